//! Benchmarks of the pump model: a 10-year life, and the cost of a long span of simple
//! continuous therapy (which must not grow with the span). Figures in docs/BENCHMARKS.md.

use itb_dose::{Concentration, DeviceProfile, Duration, Volume};
use itb_pump::world::InjectInto;
use itb_pump::{Command, Implant, Instant, Pump, PumpTime, Request, WorldAction};

fn main() {
    divan::main();
}

fn start() -> Instant {
    // 2026-12-02T10:00:00Z
    Instant::from_ms(1_796_205_600_000)
}

fn flex_with_ptm() -> itb_dose::Prescription {
    let mut text = String::from("mode = \"flex\"\n");
    for step in 0..13u32 {
        let minutes = step * 110;
        let rate = 360 + 10 * step;
        text.push_str(&format!(
            "[[flex.steps]]\nstart = \"{:02}:{:02}\"\nrate = \"{rate} micrograms/day\"\n",
            minutes / 60,
            minutes % 60
        ));
    }
    text.push_str(
        "[ptm]\nbolus_dose = \"10 micrograms\"\nbolus_duration = \"10 min\"\nlockout = \"3 h\"\nmax_boluses_per_day = 4\n",
    );
    itb_dose::toml::from_toml(&text).expect("valid")
}

fn implant(at: Instant, prescription: itb_dose::Prescription) -> Pump {
    Pump::implant(Implant {
        profile: DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
        at,
        clock: PumpTime::from_ms(at.as_ms()),
        catheter_cm: 50,
        rate_error_ppm: 30_000,
        fill: Volume::ml(20),
        concentration: Concentration::micrograms_per_ml(2000),
        prescription,
    })
    .expect("implant")
}

/// Ten years of flex therapy (13 steps a day), 4 PTM boluses a day, refills every 90 days with
/// the low-reservoir alarm sounding before each, and a pump replacement at ERI. Returns events.
pub fn ten_year_life() -> u64 {
    let end = start().plus(Duration::days(3_653));
    let mut pump = implant(start(), flex_with_ptm());
    let mut events = 0;
    let mut id = 0u64;
    let mut day = 0u64;
    let mut t = start();
    while t < end {
        for hour in [8, 12, 16, 20] {
            id += 1;
            let at = start().plus(Duration::days(day)).plus(Duration::hours(hour));
            let _ = pump.handle(at, Request::patient(Some(id), Command::PtmBolus));
        }
        day += 1;
        t = start().plus(Duration::days(day));
        if day.is_multiple_of(90) {
            pump.act(t, WorldAction::Withdraw);
            let concentration = Concentration::micrograms_per_ml(2000);
            pump.act(t, WorldAction::Inject { volume: Volume::ml(20), concentration, into: InjectInto::Reservoir });
            let _ = pump.handle(
                t,
                Request::clinician(None, Command::Refill { volume: Volume::ml(20), concentration, bridge: false }),
            );
        }
        if pump.elective_replacement() {
            events += pump.counters().events;
            pump = implant(t, flex_with_ptm());
        }
    }
    pump.advance_to(end);
    events + pump.counters().events
}

#[divan::bench]
fn ten_year_flex_ptm_life(bencher: divan::Bencher) {
    let events = ten_year_life();
    bencher.counter(divan::counter::ItemsCount::new(events)).bench(ten_year_life);
}

fn continuous_for(days: u64) -> u64 {
    let prescription =
        itb_dose::toml::from_toml("mode = \"simple_continuous\"\ndose = \"100 micrograms/day\"\n").expect("valid");
    let mut pump = Pump::implant(Implant {
        profile: DeviceProfile::built_in("synchromed-ii-40").expect("profile"),
        at: start(),
        clock: PumpTime::from_ms(start().as_ms()),
        catheter_cm: 50,
        rate_error_ppm: 0,
        fill: Volume::ml(40),
        concentration: Concentration::micrograms_per_ml(500),
        prescription,
    })
    .expect("implant");
    pump.act(start(), WorldAction::Catheter(itb_pump::world::CatheterState::Patent));
    pump.advance_to(start().plus(Duration::days(days)));
    pump.counters().events
}

/// Simple continuous with nothing to alarm about: the cost must be flat in the span.
#[divan::bench(args = [1, 30, 180])]
fn simple_continuous_span_days(days: u64) -> u64 {
    continuous_for(days)
}
