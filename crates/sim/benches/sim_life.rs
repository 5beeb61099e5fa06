//! Benchmarks of the simulator against the pump library on the same life (`ten-years.toml`, over
//! 5 and 10 years): the runner's cost per pump event must stay close to the library's.
//! Figures in docs/BENCHMARKS.md.

use itb_pump::world::InjectInto;
use itb_pump::{Command, Implant, Pump, PumpTime, Request, WorldAction};
use itb_sim::Scenario;
use itb_sim::scenario::Action;

const TEN_YEARS: &str = include_str!("ten-years.toml");

fn main() {
    divan::main();
}

/// The scenario over its first `years` (5: the pump still working; 10: three years of it at
/// end of service, its critical alarm sounding every 10 minutes). The actions past the end are
/// dropped, as the scenario file would have to.
fn scenario(years: u64) -> Scenario {
    let mut scenario = Scenario::from_toml(TEN_YEARS).expect("the benchmark scenario is valid");
    scenario.end = scenario.start.plus(itb_dose::Duration::days(years * 36_525 / 100));
    scenario.actions.retain(|a| a.at <= scenario.end);
    scenario
}

/// The whole simulator: the runner, its timeline, samples, per-day figures and summary.
#[divan::bench(args = [5, 10])]
fn years_through_the_simulator(bencher: divan::Bencher, years: u64) {
    let scenario = scenario(years);
    let events = itb_sim::run(&scenario).expect("runs").summary.events;
    bencher.counter(divan::counter::ItemsCount::new(events)).bench(|| itb_sim::run(divan::black_box(&scenario)));
}

/// The same actions straight through the pump library: what the runner costs on top.
fn library_life(scenario: &Scenario) -> u64 {
    let clock = PumpTime::from_civil(scenario.zone.to_datetime(scenario.start.to_timestamp()));
    let mut pump = Pump::implant(Implant {
        profile: scenario.profile.clone(),
        at: scenario.start,
        clock,
        catheter_cm: scenario.catheter_cm,
        rate_error_ppm: scenario.rate_error_ppm,
        fill: scenario.fill,
        concentration: scenario.concentration,
        prescription: scenario.prescription.clone(),
    })
    .expect("implant");
    let mut id = 0;
    let mut request = |command| {
        id += 1;
        Request::simulator(Some(id), command)
    };
    let _ = pump.handle(scenario.start, request(Command::PrimingBolus { catheter_only: false }));
    for timed in &scenario.actions {
        match &timed.action {
            Action::Ptm => {
                let _ = pump.handle(timed.at, request(Command::PtmBolus));
            }
            Action::Refill { volume, concentration, bridge, .. } => {
                pump.act(timed.at, WorldAction::Withdraw);
                let into = InjectInto::Reservoir;
                pump.act(timed.at, WorldAction::Inject { volume: *volume, concentration: *concentration, into });
                let command = Command::Refill { volume: *volume, concentration: *concentration, bridge: *bridge };
                let _ = pump.handle(timed.at, request(command));
            }
            other => unreachable!("the benchmark scenario has no {other:?}"),
        }
    }
    pump.advance_to(scenario.end);
    pump.counters().events
}

#[divan::bench(args = [5, 10])]
fn years_through_the_library(bencher: divan::Bencher, years: u64) {
    let scenario = scenario(years);
    let events = library_life(&scenario);
    bencher.counter(divan::counter::ItemsCount::new(events)).bench(|| library_life(divan::black_box(&scenario)));
}
