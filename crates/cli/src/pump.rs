//! `itb pump`: the virtual pump. `simulate` runs a scenario file; `battery` prints the battery
//! model's life against daily volume.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use itb_dose::{DeviceProfile, VolumeRate};
use serde_json::json;

use crate::CliError;
use crate::output::number;

/// The virtual pump.
#[derive(Debug, Subcommand)]
pub enum PumpCommand {
    /// Make a virtual pump's non-volatile state and keys, and the paired programmer and PTM keys.
    Provision(crate::device::ProvisionArgs),
    /// Run a virtual pump in real time (or faster) behind the secure link.
    Run(crate::device::RunArgs),
    /// Run a scenario (TOML: see examples/scenarios/) and print its timeline and summary.
    Simulate(SimulateArgs),
    /// Battery life against daily volume, from a device profile's battery model.
    Battery(BatteryArgs),
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
pub struct SimulateArgs {
    /// The scenario file.
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// Print JSON (summary and timeline).
    #[arg(long)]
    json: bool,
    /// Also draw the reservoir, the delivery rate, the drug reaching the CSF against the
    /// prescription, and the alarms over time into this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
pub struct BatteryArgs {
    /// The device profile.
    #[arg(long, value_name = "NAME", default_value = "synchromed-ii-20")]
    profile: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a pump command and returns what to print.
pub fn run(command: PumpCommand) -> Result<String, CliError> {
    match command {
        PumpCommand::Provision(args) => crate::device::provision(&args),
        PumpCommand::Run(args) => crate::device::run(&args),
        PumpCommand::Simulate(args) => simulate(&args),
        PumpCommand::Battery(args) => battery(&args),
    }
}

fn simulate(args: &SimulateArgs) -> Result<String, CliError> {
    let path = args.scenario.display().to_string();
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| CliError::flag("--scenario", format!("cannot read {path}: {e}")))?;
    let scenario =
        itb_sim::Scenario::from_toml(&text).map_err(|e| CliError::flag("--scenario", format!("{path}: {e}")))?;
    let report = itb_sim::run(&scenario).map_err(|e| CliError::flag("--scenario", format!("{path}: {e}")))?;
    if let Some(svg_path) = &args.svg {
        let svg = itb_sim::svg::plot(&report, scenario.profile.reservoir.capacity.value, &scenario.zone);
        std::fs::write(svg_path, svg)
            .map_err(|e| CliError::flag("--svg", format!("cannot write {}: {e}", svg_path.display())))?;
    }
    if args.json {
        let mut text = serde_json::to_string_pretty(&report).map_err(|e| CliError(e.to_string()))?;
        text.push('\n');
        return Ok(text);
    }
    Ok(human(&report, &scenario))
}

/// Most lines of days off the prescribed dose in the text (every day is in the JSON).
const DAYS_LISTED_MAX: usize = 31;

fn human(report: &itb_sim::RunReport, scenario: &itb_sim::Scenario) -> String {
    use itb_dose::text;
    use itb_sim::words;
    use std::fmt::Write;

    let zone = &scenario.zone;
    let when = |at: itb_pump::Instant| text::date_time(at.to_timestamp(), zone);
    let s = &report.summary;
    let mut out = format!("{}\n", s.scenario);
    if let Some(description) = &scenario.description {
        let _ = writeln!(out, "{description}");
    }
    let zone_name = zone.iana_name().unwrap_or("UTC");
    let _ = writeln!(out, "\nTimeline ({zone_name}; the pump's own clock in brackets where it reads otherwise)");
    for entry in &report.timeline {
        let local = zone.to_datetime(entry.at.to_timestamp());
        let same_minute = entry.pump_time.to_civil().is_some_and(|pump| {
            local.date() == pump.date() && local.hour() == pump.hour() && local.minute() == pump.minute()
        });
        let pump_clock =
            if same_minute { String::new() } else { format!(" [pump: {}]", words::pump_time(entry.pump_time)) };
        let kind = words::capitalised(&words::code_in_words(entry.kind));
        let _ = writeln!(out, "  {:<21}{pump_clock}  {kind:<22} {}", when(entry.at), entry.text);
    }
    if report.timeline_omitted > 0 {
        let _ = writeln!(
            out,
            "  ... and {} more entries (the timeline keeps the first {})",
            report.timeline_omitted,
            itb_sim::run::TIMELINE_MAX
        );
    }

    let _ = writeln!(out, "\nSummary");
    let line = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "  {label:<44} {value}");
    };
    let b = &s.mass_balance;
    line(&mut out, "Period", format!("{} to {}", when(s.start), when(s.end)));
    line(&mut out, "Volume the pump delivered (its own count)", text::volume(s.commanded));
    line(&mut out, "Reservoir at the end: the pump's estimate", text::volume(s.reservoir_estimate));
    line(&mut out, "Reservoir at the end: truth", text::volume(b.in_reservoir.volume));
    line(&mut out, "State at the end", words::code_in_words(s.state));
    let battery_days = s.battery_remaining.as_ms() / itb_dose::quantity::MS_PER_DAY;
    line(&mut out, "Battery life left (estimate)", format!("{battery_days} days"));
    line(&mut out, "Alarm tones sounded", s.tones.to_string());
    line(&mut out, "Mass balance held after every step", if s.mass_balance_holds { "yes" } else { "NO" }.to_owned());

    let _ = writeln!(out, "\nWhere the drug went (mass balance; rounded here, exact in --json)");
    let row = |out: &mut String, side: &str, label: &str, fluid: itb_pump::world::Fluid| {
        let _ =
            writeln!(out, "  {side:<4} {label:<46} {:>22} {:>10}", text::mass(fluid.mass), text::volume(fluid.volume));
    };
    row(&mut out, "In", "injected into the reservoir", b.into_reservoir);
    row(&mut out, "", "injected elsewhere (pocket fill, overfill)", b.injected_elsewhere);
    row(&mut out, "Out", "in the reservoir at the end", b.in_reservoir);
    row(&mut out, "", "in the pump tubing and catheter at the end", b.in_tubing_and_catheter);
    row(&mut out, "", "reached the CSF", b.to_csf);
    let mut causes = 0;
    for (cause, fluid) in b.tissue.iter() {
        if !fluid.volume.is_zero() || !fluid.mass.is_zero() {
            row(&mut out, "", &format!("into tissue: {}", cause.describe()), fluid);
            causes += 1;
        }
    }
    if causes == 0 {
        row(&mut out, "", "into tissue", b.to_tissue);
    }
    row(&mut out, "", "withdrawn at refills", b.withdrawn);
    let verdict = if b.holds() { "yes, to the nanogram and the nanolitre" } else { "NO" };
    let _ = writeln!(out, "  In equals out: {verdict}");

    let _ = writeln!(
        out,
        "\nDrug reaching the CSF against the prescription (a day is off when it differs by more than {} %)",
        itb_sim::account::DOSE_TOLERANCE_PERCENT
    );
    line(&mut out, "Prescribed", text::mass(s.prescribed));
    line(&mut out, "Reached the CSF", text::mass(b.to_csf.mass));
    let without = if s.time_without_drug.is_zero() { "none".to_owned() } else { text::duration(s.time_without_drug) };
    line(&mut out, "Time with no drug reaching the CSF", without);
    line(&mut out, "Days below the prescribed dose", s.days_below_prescribed.to_string());
    line(&mut out, "Days above the prescribed dose", s.days_above_prescribed.to_string());
    for period in &s.periods_without_drug {
        let _ = writeln!(
            out,
            "  Without drug from {} to {} ({})",
            when(period.start),
            when(period.end),
            text::duration(period.end.since(period.start))
        );
    }
    if s.periods_without_drug_omitted > 0 {
        let _ = writeln!(out, "  ... and {} more periods without drug (in the total)", s.periods_without_drug_omitted);
    }
    // Days off the prescribed dose, a run of days with the same figures on one line.
    let mut runs: Vec<(&itb_sim::account::DayFigures, &itb_sim::account::DayFigures, usize)> = Vec::new();
    for day in report.csf_per_day.iter().filter(|d| d.verdict() != itb_sim::account::Verdict::AsPrescribed) {
        let same = |last: &itb_sim::account::DayFigures| {
            last.date.tomorrow().ok() == Some(day.date)
                && last.to_csf == day.to_csf
                && last.prescribed == day.prescribed
        };
        match runs.last_mut() {
            Some((_, last, count)) if same(last) => {
                *last = day;
                *count += 1;
            }
            _ => runs.push((day, day, 1)),
        }
    }
    if !runs.is_empty() {
        let _ = writeln!(out, "  Days off the prescribed dose (a part day counts what was prescribed for its part):");
        for (first, last, count) in runs.iter().take(DAYS_LISTED_MAX) {
            let date = |d: &itb_sim::account::DayFigures| d.date.strftime("%-d %b %Y").to_string();
            let dates = if *count == 1 {
                date(first)
            } else {
                format!("{} to {} ({count} days, each)", date(first), date(last))
            };
            let percent = if first.prescribed.is_zero() {
                "none prescribed".to_owned()
            } else {
                let ratio = itb_dose::decimal::div_round(
                    u128::from(first.to_csf.as_ng()) * 100,
                    u128::from(first.prescribed.as_ng()),
                );
                format!("{ratio} % of the {} prescribed", text::mass(first.prescribed))
            };
            let direction = match first.verdict() {
                itb_sim::account::Verdict::Below => "below",
                _ => "above",
            };
            let _ = writeln!(out, "    {dates}: {} reached the CSF, {percent}: {direction}", text::mass(first.to_csf));
        }
        if runs.len() > DAYS_LISTED_MAX {
            let _ = writeln!(out, "    ... and {} more (every day is in --json)", runs.len() - DAYS_LISTED_MAX);
        }
    }

    if !s.alarms.is_empty() {
        let _ = writeln!(out, "\nAlarms raised");
        for alarm in &s.alarms {
            let severity = if alarm.critical() { "critical" } else { "non-critical" };
            let _ = writeln!(out, "  {:<21}  {} ({severity})", when(alarm.at), words::alarm_name(alarm.kind));
        }
        if s.alarms_omitted > 0 {
            let _ = writeln!(out, "  ... and {} more alarms", s.alarms_omitted);
        }
    }
    if !s.refills.is_empty() {
        let _ = writeln!(out, "\nRefills: expected against withdrawn");
        for refill in &s.refills {
            let gap = itb_dose::Volume::nl(u64::try_from(refill.gap_nl().unsigned_abs()).unwrap_or(u64::MAX));
            let direction = match refill.gap_nl().signum() {
                1 => " less than expected",
                -1 => " more than expected",
                _ => "",
            };
            let flag = if refill.warning { "  WARNING" } else { "" };
            let _ = writeln!(
                out,
                "  {:<21}  expected {}, withdrawn {}, gap {}{direction}{flag}",
                when(refill.at),
                text::volume(refill.expected),
                text::volume(refill.withdrawn),
                text::volume(gap)
            );
        }
    }
    if !s.refused.is_empty() {
        let _ = writeln!(out, "\nRefused commands");
        for refused in &s.refused {
            let command = words::capitalised(&words::code_in_words(refused.command));
            let _ = writeln!(out, "  {:<21}  {command}: {}", when(refused.at), refused.reason);
        }
    }
    out
}

fn battery(args: &BatteryArgs) -> Result<String, CliError> {
    use itb_dose::text;
    let profile = DeviceProfile::built_in(&args.profile).map_err(|e| CliError::flag("--profile", e))?;
    let years = |span: itb_dose::Duration| span.as_ms() as f64 / 86_400_000.0 / 365.25;
    let volumes_micro_ml: [u64; 10] = [50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000];
    let rows: Vec<(u64, f64)> = volumes_micro_ml
        .iter()
        .map(|micro| (*micro, years(profile.battery_life_at(VolumeRate::nl_per_day(micro * 1_000)))))
        .collect();
    let service_life = profile.battery.service_life_max.value;
    let eri_before_eos = profile.battery.eri_before_eos.value;
    if args.json {
        let points: Vec<_> = rows
            .iter()
            .map(|(micro, years)| json!({ "daily_volume_ml": *micro as f64 / 1_000.0, "years": (years * 100.0).round() / 100.0 }))
            .collect();
        let document = json!({
            "profile": profile.name,
            "curve": points,
            "service_life_days": number(service_life.days_decimal()),
            "eri_before_eos_days": number(eri_before_eos.days_decimal()),
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&document).unwrap_or_default()));
    }
    let mut out = format!("Battery life against daily volume ({}, [model] battery)\n", profile.name);
    out.push_str("  mL/day   years\n");
    for (micro, years) in rows {
        let bar = "#".repeat((years * 8.0).round() as usize);
        let volume = itb_dose::decimal::format(micro, 3).to_string();
        out.push_str(&format!("  {volume:>6}   {years:>5.2}  {bar}\n"));
    }
    let life_years = format!("{:.2}", years(service_life));
    let life_years = life_years.trim_end_matches('0').trim_end_matches('.');
    out.push_str(&format!(
        "\n  The pump stops after {} ({life_years} years) of service whatever the charge; the Elective \
         Replacement Indicator (ERI) comes {} before End of Service.\n",
        text::duration(service_life),
        text::duration(eri_before_eos)
    ));
    Ok(out)
}
