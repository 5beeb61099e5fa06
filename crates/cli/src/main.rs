//! `itb`: the one binary of the intrathecal baclofen system.
//!
//! `itb calc ...` runs the service's calculations; `itb pump ...` the virtual pump;
//! `itb program ...` the clinician programmer and `itb ptm ...` the patient's therapy manager
//! (both over `itb-programmer`). Later: `itb serve`.
#![forbid(unsafe_code)]

mod calc;
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
    #[command(subcommand)]
    Calc(calc::CalcCommand),
    /// The virtual pump: provision and run a device, run scenarios, show the battery model.
    #[command(subcommand)]
    Pump(pump::PumpCommand),
    /// The clinician programmer: interrogate, program, refill, clear alarms over the secure link.
    Program(program::ProgramArgs),
    /// The patient's therapy manager: ask for a bolus, see when the next is allowed.
    Ptm(program::PtmArgs),
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

/// One line for a clap error, naming the flag; clap's own text for help and version.
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
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            None
        }
        ErrorKind::MissingRequiredArgument => Some(format!("missing {arg}: give it, or see --help")),
        ErrorKind::InvalidValue if value.is_empty() => Some(format!("{arg} needs a value: give it, or see --help")),
        ErrorKind::InvalidValue => {
            let valid = context(ContextKind::ValidValue).map(|v| format!("; use one of: {v}")).unwrap_or_default();
            Some(format!("{arg}: '{value}' is not accepted{valid}"))
        }
        ErrorKind::ValueValidation => {
            let first = error.to_string();
            let detail = first.lines().next().unwrap_or_default().rsplit(": ").next().unwrap_or_default().to_owned();
            Some(format!("{arg}: {detail}"))
        }
        ErrorKind::ArgumentConflict => {
            let other = context(ContextKind::PriorArg).unwrap_or_default();
            Some(format!("{arg} cannot be used with {other}: give one of them"))
        }
        ErrorKind::UnknownArgument => Some(format!("{arg} is not a flag of this command: see --help")),
        ErrorKind::InvalidSubcommand => {
            let suggestion = context(ContextKind::SuggestedSubcommand)
                .map_or_else(|| ".".to_owned(), |s| format!("; did you mean '{s}'?"));
            Some(format!("'{arg}' is not a command here{suggestion} See --help for the commands"))
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
                    ExitCode::SUCCESS
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
