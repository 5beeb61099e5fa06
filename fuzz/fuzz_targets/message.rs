//! Arbitrary bytes as a message: the CBOR decoders, and the pump's message handler for a patient
//! (PTM) session and for a clinician session.
//!
//! Checks:
//! - `message::decode::<Request>` and `message::decode::<Response>` never panic.
//! - `Device::handle` never panics for either role, always answers a well-formed `Response`
//!   carrying the request's id (0 when the bytes are not a request), and answers a retry of the
//!   same bytes with the same answer without acting again.
//! - A patient session never changes the pump's program (its program number) and changes the
//!   pump's state only through a PTM bolus.
#![no_main]

use itb_dose::{Concentration, DeviceProfile, Duration, Volume};
use itb_link::Role;
use itb_link::device::Device;
use itb_link::message::{self, Request, RequestBody, Response};
use itb_pump::{Implant, Instant, Pump, PumpTime};
use libfuzzer_sys::fuzz_target;

fn start() -> Instant {
    Instant::from_ms(1_795_600_800_000) // 2026-11-25T10:00:00Z
}

fn now() -> Instant {
    start().plus(Duration::hours(1))
}

/// A freshly implanted 20 mL pump with a PTM prescribed, run to `now()`.
fn make_template() -> Device {
    let prescription = itb_dose::toml::from_toml(
        "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n[ptm]\nbolus_dose = \"20 micrograms\"\n\
         bolus_duration = \"10 min\"\nlockout = \"2 h\"\nmax_boluses_per_day = 3\n",
    )
    .expect("valid prescription");
    let mut device = Device::new(
        Pump::implant(Implant {
            profile: DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
            at: start(),
            clock: PumpTime::from_ms(start().as_ms()),
            catheter_cm: 50,
            rate_error_ppm: 0,
            fill: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            prescription,
        })
        .expect("implant"),
    );
    device.advance_to(now());
    device
}

thread_local! {
    // The pump is not `Sync`; libFuzzer runs the target on one thread.
    static TEMPLATE: Device = make_template();
}

fn template() -> Device {
    TEMPLATE.with(Device::clone)
}

fn program_number(device: &Device) -> u64 {
    device.pump().status().program_number
}

/// Handles `data` twice on a fresh copy of the pump, checks the answers, returns the copy.
fn handle(role: Role, data: &[u8], request: Option<&Request>) -> (Device, bool) {
    let mut device = template();
    let outcome = device.handle(role, now(), data);
    let response: Response = message::decode(&outcome.response).expect("the pump answers a valid response");
    assert_eq!(response.id, request.map_or(0, |r| r.id), "the answer carries the request's id");
    let retry = device.handle(role, now(), data);
    assert_eq!(retry.response, outcome.response, "a retry gets the first answer");
    assert!(!retry.changed, "a retry acts once");
    (device, outcome.changed)
}

fuzz_target!(|data: &[u8]| {
    let request = message::decode::<Request>(data).ok();
    let _ = message::decode::<Response>(data);

    let before = program_number(&template());
    let (patient, changed) = handle(Role::Patient, data, request.as_ref());
    assert_eq!(program_number(&patient), before, "a patient session changed the program");
    if changed {
        assert!(
            matches!(request, Some(Request { body: RequestBody::PtmBolus {}, .. })),
            "a patient session changed the pump with {request:?}"
        );
    }

    let _ = handle(Role::Clinician, data, request.as_ref());
});
