//! `itb pump`: the virtual pump. `simulate` runs a scenario file; `battery` prints the battery
//! model's life against daily volume.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use itb_dose::{DeviceProfile, VolumeRate};
use serde_json::json;

use crate::CliError;

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
pub struct SimulateArgs {
    /// The scenario file.
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// Print JSON (summary and timeline).
    #[arg(long)]
    json: bool,
    /// Also draw reservoir, rate and alarms over time into this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
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
        let capacity_ml = scenario.profile.reservoir.capacity.value.as_nl() as f64 / 1_000_000.0;
        let svg = itb_sim::svg::plot(&report, capacity_ml, &scenario.zone);
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

fn local(zone: &jiff::tz::TimeZone, rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| zone.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

fn human(report: &itb_sim::RunReport, scenario: &itb_sim::Scenario) -> String {
    let zone = &scenario.zone;
    let zone_name = zone.iana_name().unwrap_or("UTC");
    let s = &report.summary;
    let mut out = format!("{}\n", s.scenario);
    if let Some(description) = &scenario.description {
        out.push_str(&format!("{description}\n"));
    }
    out.push_str(&format!("\nTimeline ({zone_name}; the pump's own clock in brackets)\n"));
    for entry in &report.timeline {
        out.push_str(&format!(
            "  {} [{}]  {:<18} {}\n",
            local(zone, &entry.at),
            &entry.pump_time[..16.min(entry.pump_time.len())],
            entry.kind,
            entry.text
        ));
    }
    if report.timeline_omitted > 0 {
        out.push_str(&format!("  ... and {} more entries\n", report.timeline_omitted));
    }
    out.push_str("\nSummary\n");
    let line = |out: &mut String, label: &str, value: String| out.push_str(&format!("  {label:<40} {value}\n"));
    line(&mut out, "Period", format!("{} to {}", local(zone, &s.start), local(zone, &s.end)));
    line(&mut out, "Volume the pump delivered (its own count)", format!("{} mL", s.commanded_ml));
    line(&mut out, "Drug that reached the CSF", format!("{} micrograms", s.to_csf_micrograms));
    line(&mut out, "Drug that went into tissue", format!("{} micrograms", s.to_tissue_micrograms));
    line(&mut out, "Drug in the catheter at the end", format!("{} micrograms", s.in_catheter_micrograms));
    line(&mut out, "Reservoir at the end: pump's estimate", format!("{} mL", s.reservoir_estimate_ml));
    line(&mut out, "Reservoir at the end: truth", format!("{} mL", s.reservoir_true_ml));
    line(&mut out, "State at the end", s.state.clone());
    line(&mut out, "Battery life left (estimate)", format!("{:.0} days", s.battery_remaining_days));
    line(&mut out, "Alarm tones sounded", s.tones.to_string());
    line(&mut out, "Mass balance held throughout", if s.mass_balance_holds { "yes" } else { "NO" }.to_owned());
    if !s.alarms.is_empty() {
        out.push_str("\nAlarms raised\n");
        for alarm in &s.alarms {
            let severity = if alarm.critical { "critical" } else { "non-critical" };
            out.push_str(&format!("  {}  {} ({severity})\n", local(zone, &alarm.at), alarm.alarm));
        }
    }
    if !s.refills.is_empty() {
        out.push_str("\nRefills: expected against withdrawn\n");
        for refill in &s.refills {
            let flag = if refill.warning { "  WARNING" } else { "" };
            out.push_str(&format!(
                "  {}  expected {} mL, withdrawn {} mL, gap {} mL{flag}\n",
                local(zone, &refill.at),
                refill.expected_ml,
                refill.withdrawn_ml,
                refill.gap_ml
            ));
        }
    }
    if !s.refused.is_empty() {
        out.push_str("\nRefused commands\n");
        for refused in &s.refused {
            out.push_str(&format!("  {}  {}: {}\n", local(zone, &refused.at), refused.command, refused.reason));
        }
    }
    out
}

fn battery(args: &BatteryArgs) -> Result<String, CliError> {
    let profile = DeviceProfile::built_in(&args.profile).map_err(|e| CliError::flag("--profile", e))?;
    let volumes_micro_ml: [u64; 10] = [50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000];
    let rows: Vec<(u64, f64)> = volumes_micro_ml
        .iter()
        .map(|micro| {
            let life = profile.battery_life_at(VolumeRate::nl_per_day(micro * 1_000));
            (*micro, life.as_ms() as f64 / 86_400_000.0 / 365.25)
        })
        .collect();
    if args.json {
        let points: Vec<_> = rows
            .iter()
            .map(|(micro, years)| json!({ "daily_volume_ml": *micro as f64 / 1_000.0, "years": (years * 100.0).round() / 100.0 }))
            .collect();
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({ "profile": profile.name, "curve": points })).unwrap_or_default()
        ));
    }
    let mut out = format!("Battery life against daily volume ({}, [model] battery)\n", profile.name);
    out.push_str("  mL/day   years\n");
    for (micro, years) in rows {
        let bar = "#".repeat((years * 8.0).round() as usize);
        out.push_str(&format!("  {:>6}   {years:>5.2}  {bar}\n", itb_dose::decimal::format(micro, 3)));
    }
    out.push_str(&format!(
        "\n  The pump stops at {} whatever the charge; ERI comes {} before End of Service.\n",
        profile.battery.service_life_max.value, profile.battery.eri_before_eos.value
    ));
    Ok(out)
}
