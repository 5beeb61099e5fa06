//! Helpers shared by the pump's tests.
#![allow(dead_code)]

use itb_dose::{Concentration, DeviceProfile, Duration, Volume};
use itb_pump::{Command, Implant, Instant, Pump, PumpTime, Reply, Request};

/// 2026-11-25T10:00:00Z.
pub fn start() -> Instant {
    at("2026-11-25T10:00:00Z")
}

pub fn at(text: &str) -> Instant {
    Instant::from_timestamp(text.parse().expect("valid instant"))
}

pub fn prescription(toml: &str) -> itb_dose::Prescription {
    itb_dose::toml::from_toml(toml).expect("valid prescription")
}

pub fn continuous(micrograms_per_day: u64) -> itb_dose::Prescription {
    prescription(&format!("mode = \"simple_continuous\"\ndose = \"{micrograms_per_day} micrograms/day\"\n"))
}

/// A 20 mL pump with a 50 cm catheter, clock at 10:00 local (= UTC in November), no rate error.
pub fn implant(prescription: itb_dose::Prescription, fill_ml: u64, micrograms_per_ml: u64) -> Pump {
    Pump::implant(Implant {
        profile: DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
        at: start(),
        clock: PumpTime::from_civil("2026-11-25T10:00".parse().expect("valid")),
        catheter_cm: 50,
        rate_error_ppm: 0,
        fill: Volume::ml(fill_ml),
        concentration: Concentration::micrograms_per_ml(micrograms_per_ml),
        prescription,
    })
    .expect("implant")
}

pub fn request(id: u64, command: Command) -> Request {
    Request::clinician(Some(id), command)
}

/// Handles a command that must be accepted; dose commands get a fresh request id.
pub fn ok(pump: &mut Pump, t: Instant, command: Command) -> Reply {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);
    let id = Some(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    pump.handle(t, Request::clinician(id, command)).expect("accepted")
}

pub fn days(n: u64) -> Duration {
    Duration::days(n)
}
