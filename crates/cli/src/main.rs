//! `itb`: the one binary of the intrathecal baclofen system.
//!
//! `itb calc ...` runs the service's calculations; `itb pump ...` the virtual pump;
//! `itb program ...` the clinician programmer and `itb ptm ...` the patient's therapy manager
//! (both over `itb-programmer`); `itb serve`, `itb db`, `itb user` and `itb audit` the clinic's
//! system of record (`itb-clinic`).
#![forbid(unsafe_code)]

mod calc;
mod clinic;
mod device;
mod output;
mod program;
mod pump;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};

/// itb: intrathecal baclofen therapy, from the dose to the clinic.
#[derive(Debug, Parser)]
#[command(name = "itb", version, about, long_about = None, after_help = program::EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing would only add noise
enum Command {
    /// Calculations of an ITB service: refill dates, bridge and priming boluses, titration
    /// checks, screening, goal attainment.
    #[command(subcommand, after_help = output::EXIT_CODES)]
    Calc(calc::CalcCommand),
    /// The virtual pump: provision and run a device, run scenarios, show the battery model.
    #[command(subcommand, after_help = output::EXIT_CODES)]
    Pump(pump::PumpCommand),
    /// The clinician programmer: interrogate, program, refill, clear alarms over the secure link.
    Program(program::ProgramArgs),
    /// The patient's therapy manager: ask for a bolus, see when the next is allowed.
    Ptm(program::PtmArgs),
    /// The clinic's system of record and its JSON API (with --demo: a demo service).
    Serve(clinic::ServeArgs),
    /// The clinic's database: migrate, back up, restore, copy to another database.
    #[command(subcommand, after_help = clinic::EXIT_CODES)]
    Db(clinic::DbCommand),
    /// The clinic's users.
    #[command(subcommand, after_help = clinic::EXIT_CODES)]
    User(clinic::UserCommand),
    /// The clinic's audit log.
    #[command(subcommand, after_help = clinic::EXIT_CODES)]
    Audit(clinic::AuditCommand),
}

/// An error for the person at the keyboard: one sentence, naming what to change.
#[derive(Debug)]
pub struct CliError(pub String);

impl CliError {
    /// An error about one flag's value.
    pub fn flag(flag: &str, problem: impl std::fmt::Display) -> Self {
        Self(format!("{flag}: {problem}"))
    }
}

/// `'a'`, `'a' or 'b'`, `'a', 'b' or 'c'`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The command a clap error is about: from its usage line (`itb calc refill`), or, when clap
/// gives none, the words of the command line before its first flag.
fn command_path(usage: Option<String>) -> String {
    let usage = usage.unwrap_or_else(|| {
        let words: Vec<String> = std::env::args().skip(1).take_while(|word| !word.starts_with('-')).collect();
        format!("itb {}", words.join(" "))
    });
    let words: Vec<&str> = usage
        .trim_start_matches("Usage:")
        .split_whitespace()
        .take_while(|word| !word.starts_with(['-', '<', '[']))
        .collect();
    if words.is_empty() { "itb".to_owned() } else { words.join(" ") }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What to write instead of a value the standard parsers refused.
fn value_advice(detail: &str) -> &'static str {
    match detail {
        "invalid digit found in string" | "cannot parse integer from empty string" => "give a whole number",
        "number too large to fit in target type" => "give a smaller whole number",
        "number too small to fit in target type" => "give a larger whole number",
        _ => "see --help",
    }
}

/// One line for a clap error, naming the command or flag and what to do; `None` for help and
/// version, which clap prints itself.
fn clap_error_sentence(error: &clap::Error) -> Option<String> {
    let context = |kind| {
        error.get(kind).map(|value| match value {
            ContextValue::String(s) => s.clone(),
            ContextValue::Strings(list) => list.join(", "),
            other => other.to_string(),
        })
    };
    let arg = context(ContextKind::InvalidArg).unwrap_or_default();
    let value = context(ContextKind::InvalidValue).unwrap_or_default();
    let command = command_path(context(ContextKind::Usage));
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            None
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = match error.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(list)) => list.clone(),
                _ => vec![arg],
            };
            let them = if missing.len() > 1 { "them" } else { "it" };
            Some(format!("missing {}: give {them}, or see {command} --help", and_list(&missing)))
        }
        ErrorKind::InvalidValue if value.is_empty() => {
            Some(format!("{arg} needs a value: give it, or see {command} --help"))
        }
        ErrorKind::InvalidValue => {
            let valid = context(ContextKind::ValidValue).map(|v| format!("; use one of: {v}")).unwrap_or_default();
            Some(format!("{arg}: '{value}' is not accepted{valid}"))
        }
        ErrorKind::ValueValidation => {
            let first = error.to_string();
            let detail = first.lines().next().unwrap_or_default().rsplit(": ").next().unwrap_or_default().to_owned();
            Some(format!("{arg}: '{value}' is not accepted; {}", value_advice(&detail)))
        }
        ErrorKind::ArgumentConflict => {
            let other = context(ContextKind::PriorArg).unwrap_or_default();
            if other == arg {
                return Some(format!("{arg} was given more than once: give it once"));
            }
            Some(format!("{arg} cannot be used with {other}: give one of them"))
        }
        ErrorKind::UnknownArgument if arg.starts_with('-') && arg[1..].starts_with(|c: char| c.is_ascii_digit()) => {
            Some(format!("{arg} is negative: {command} takes no negative values; give 0 or more"))
        }
        ErrorKind::MissingSubcommand => {
            Some(format!("a command is missing after '{command}': see {command} --help for the commands"))
        }
        ErrorKind::UnknownArgument if !arg.starts_with('-') => {
            Some(format!("'{arg}' is not expected by {command}; it takes only flags. See {command} --help"))
        }
        ErrorKind::UnknownArgument => {
            let suggestion =
                context(ContextKind::SuggestedArg).map_or_else(|| ".".to_owned(), |s| format!("; did you mean {s}?"));
            Some(format!("{arg} is not a flag of {command}{suggestion} See {command} --help"))
        }
        ErrorKind::InvalidSubcommand => {
            let given = context(ContextKind::InvalidSubcommand).unwrap_or_default();
            let suggested = match error.get(ContextKind::SuggestedSubcommand) {
                Some(ContextValue::Strings(list)) => {
                    let quoted: Vec<String> = list.iter().map(|s| format!("'{s}'")).collect();
                    Some(or_list(&quoted))
                }
                Some(ContextValue::String(s)) => Some(format!("'{s}'")),
                _ => None,
            };
            match suggested {
                Some(suggested) => Some(format!(
                    "'{given}' is not a command of {command}; did you mean {suggested}? See {command} --help"
                )),
                None => Some(format!("'{given}' is not a command of {command}. See {command} --help for the commands")),
            }
        }
        _ => {
            let text = error.to_string();
            Some(text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned())
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            return match clap_error_sentence(&error) {
                None => {
                    let _ = error.print();
                    // 0 for help or the version asked for; 2 for help shown because a command
                    // or an argument is missing.
                    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
                }
                Some(sentence) => {
                    eprintln!("itb: {sentence}");
                    ExitCode::from(2)
                }
            };
        }
    };
    let result = match cli.command {
        Command::Calc(command) => calc::run(command).map(|text| program::Outcome { text, code: 0 }),
        Command::Pump(command) => pump::run(command).map(|text| program::Outcome { text, code: 0 }),
        Command::Program(args) => program::program(args),
        Command::Ptm(args) => program::ptm(args),
        Command::Serve(args) => clinic::serve(args),
        Command::Db(command) => clinic::db(command),
        Command::User(command) => clinic::user(command),
        Command::Audit(command) => clinic::audit(command),
    };
    match result {
        Ok(outcome) => {
            print!("{}", outcome.text);
            ExitCode::from(outcome.code)
        }
        Err(CliError(message)) => {
            eprintln!("itb: {message}");
            ExitCode::from(1)
        }
    }
}
