//! A virtual pump in this process, behind the real channel, with a clock the test moves.

#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use itb_dose::review::RefillPolicy;
use itb_dose::{Concentration, DeviceProfile, Duration, Volume};
use itb_link::device::Device;
use itb_link::{InitiatorConfig, KeyPair, ResponderConfig, Role, TrustedPeers};
use itb_programmer::ptm::Ptm;
use itb_programmer::{MemoryLink, Programmer};
use itb_pump::{Implant, Instant, Pump, PumpTime};

pub const START: &str = "2026-11-25T10:00:00Z";

pub fn start() -> Instant {
    Instant::from_timestamp(START.parse().expect("valid"))
}

/// A pump, its keys, and a clock.
pub struct Bench {
    pub device: Arc<Mutex<Device>>,
    pub now: Arc<AtomicI64>,
    pub programmer_keys: InitiatorConfig,
    pub ptm_keys: InitiatorConfig,
    pub responder: ResponderConfig,
    sessions: AtomicU64,
}

pub fn prescription(text: &str) -> itb_dose::Prescription {
    itb_dose::toml::from_toml(text).expect("a valid prescription")
}

pub const CONTINUOUS_400_PTM: &str = "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n[ptm]\nbolus_dose = \"20 micrograms\"\nbolus_duration = \"10 min\"\nlockout = \"2 h\"\nmax_boluses_per_day = 3\n";

impl Bench {
    /// A 20 mL pump of 2000 micrograms/mL implanted at [`START`] with `therapy`, its clock on
    /// UTC wall time.
    pub fn new(therapy: &str) -> Self {
        Self::with_rate_error(therapy, 0)
    }

    pub fn with_rate_error(therapy: &str, rate_error_ppm: i64) -> Self {
        let pump = Pump::implant(Implant {
            profile: DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
            at: start(),
            clock: PumpTime::from_ms(start().as_ms()),
            catheter_cm: 50,
            rate_error_ppm,
            fill: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            prescription: prescription(therapy),
        })
        .expect("implant");
        let pump_keys = KeyPair::generate().expect("keys");
        let programmer = KeyPair::generate().expect("keys");
        let ptm = KeyPair::generate().expect("keys");
        let mut trusted = TrustedPeers::new();
        trusted.add(programmer.public(), Role::Clinician).expect("trust");
        trusted.add(ptm.public(), Role::Patient).expect("trust");
        let pump_public = pump_keys.public();
        Self {
            device: Arc::new(Mutex::new(Device::new(pump))),
            now: Arc::new(AtomicI64::new(start().as_ms())),
            programmer_keys: InitiatorConfig::new(programmer, pump_public),
            ptm_keys: InitiatorConfig::new(ptm, pump_public),
            responder: ResponderConfig::new(pump_keys, trusted),
            sessions: AtomicU64::new(1),
        }
    }

    fn link(&self, keys: &InitiatorConfig) -> MemoryLink {
        let now = Arc::clone(&self.now);
        MemoryLink::new(
            Arc::clone(&self.device),
            Arc::new(move || Instant::from_ms(now.load(Ordering::SeqCst))),
            keys.clone(),
            self.responder.clone(),
        )
    }

    /// Request ids for a new session, apart from every other session's.
    fn first_id(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::SeqCst) * 1_000_000
    }

    /// A programmer over the in-memory link.
    pub fn programmer(&self) -> Programmer<MemoryLink> {
        Programmer::new(self.link(&self.programmer_keys), self.first_id(), RefillPolicy::default())
    }

    /// The patient's therapy manager.
    pub fn ptm(&self) -> Ptm<MemoryLink> {
        Ptm::new(self.link(&self.ptm_keys), self.first_id())
    }

    /// Moves the clock on.
    pub fn wait(&self, span: Duration) {
        self.now.fetch_add(i64::try_from(span.as_ms()).expect("span"), Ordering::SeqCst);
    }

    /// Reads the pump directly (the truth and the firmware), as a test may.
    pub fn pump<T>(&self, read: impl FnOnce(&Pump) -> T) -> T {
        let mut device = self.device.lock().expect("device");
        device.advance_to(Instant::from_ms(self.now.load(Ordering::SeqCst)));
        read(device.pump())
    }
}

/// Runs a future to completion on a current-thread runtime.
pub fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}
