//! The virtual pumps the clinic can reach: one `itb-pump` per implanted pump of the record,
//! running in this process behind the real secure channel, on the service's clock. The demo
//! service and the tests use it; a real service would reach real communicators instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use itb_dose::review::RefillPolicy;
use itb_link::device::Device;
use itb_link::{InitiatorConfig, KeyPair, ResponderConfig, Role, TrustedPeers};
use itb_programmer::{MemoryLink, Programmer};
use itb_pump::{Implant, Instant, Pump, PumpTime};
use jiff::Timestamp;

use crate::clock::ServiceClock;
use crate::error::ClinicError;
use crate::store::Store;

struct VirtualPump {
    device: Arc<Mutex<Device>>,
    programmer: InitiatorConfig,
    responder: ResponderConfig,
}

/// The fleet.
pub struct Fleet {
    pumps: Mutex<HashMap<i64, VirtualPump>>,
    clock: ServiceClock,
    sessions: AtomicU64,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("pumps", &self.len()).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fleet {
    /// No pumps yet, on `clock`.
    pub fn new(clock: ServiceClock) -> Self {
        Self { pumps: Mutex::new(HashMap::new()), clock, sessions: AtomicU64::new(1) }
    }

    /// How many pumps run.
    pub fn len(&self) -> usize {
        lock(&self.pumps).len()
    }

    /// True when none run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the virtual pump of an implanted pump from the record (its latest fill or
    /// reading, drug and prescription) and pairs the clinic's programmer key with it, recorded.
    pub async fn implanted(&self, store: &Store, pump_id: i64) -> Result<(), ClinicError> {
        self.implanted_with_error(store, pump_id, 0).await
    }

    /// As [`Fleet::implanted`], with a pump that runs `rate_error_ppm` parts per million fast
    /// (or slow, when negative) from its latest fill: the record's estimate drifts from the
    /// truth, and the next withdrawal finds the gap.
    pub async fn implanted_with_error(
        &self,
        store: &Store,
        pump_id: i64,
        rate_error_ppm: i64,
    ) -> Result<(), ClinicError> {
        let (pump, prescription) = store.pump_state(pump_id).await?;
        let Some(prescription) = prescription else {
            return Err(ClinicError::Conflict(format!("pump {pump_id} has no prescription to run")));
        };
        let at = Instant::from_timestamp(pump.ref_at);
        let virtual_pump = Pump::implant(Implant {
            profile: pump.device()?,
            at,
            clock: PumpTime::from_ms(pump.ref_at.as_millisecond()),
            catheter_cm: pump.catheter_cm,
            rate_error_ppm,
            fill: pump.ref_reservoir,
            concentration: pump.concentration,
            prescription,
        })
        .map_err(|e| ClinicError::Pump(format!("the virtual pump refused its implant: {e}")))?;
        let pump_keys = KeyPair::generate().map_err(|e| ClinicError::Internal(e.to_string()))?;
        let programmer = KeyPair::generate().map_err(|e| ClinicError::Internal(e.to_string()))?;
        let mut trusted = TrustedPeers::new();
        trusted.add(programmer.public(), Role::Clinician).map_err(|e| ClinicError::Internal(e.to_string()))?;
        let public = programmer.public().to_hex();
        let entry = VirtualPump {
            device: Arc::new(Mutex::new(Device::new(virtual_pump))),
            programmer: InitiatorConfig::new(programmer, pump_keys.public()),
            responder: ResponderConfig::new(pump_keys, trusted),
        };
        lock(&self.pumps).insert(pump_id, entry);
        store.record_system_key(pump_id, "clinician", &public, self.clock.now()).await
    }

    /// Stops the virtual pump of an explanted pump.
    pub async fn explanted(&self, pump_id: i64) {
        lock(&self.pumps).remove(&pump_id);
    }

    /// A programmer session to pump `pump_id`, or `None` when the clinic cannot reach it.
    pub fn programmer(&self, pump_id: i64, policy: RefillPolicy) -> Option<Programmer<MemoryLink>> {
        let pumps = lock(&self.pumps);
        let pump = pumps.get(&pump_id)?;
        let clock = self.clock.clone();
        let link = MemoryLink::new(
            Arc::clone(&pump.device),
            Arc::new(move || Instant::from_timestamp(clock.now())),
            pump.programmer.clone(),
            pump.responder.clone(),
        );
        let first_id = self.sessions.fetch_add(1, Ordering::SeqCst) * 1_000_000;
        Some(Programmer::new(link, first_id, policy))
    }

    /// Reads a virtual pump directly (its true state), as a test may.
    pub fn inspect<T>(&self, pump_id: i64, now: Timestamp, read: impl FnOnce(&Pump) -> T) -> Option<T> {
        let pumps = lock(&self.pumps);
        let pump = pumps.get(&pump_id)?;
        let mut device = lock(&pump.device);
        device.advance_to(Instant::from_timestamp(now));
        Some(read(device.pump()))
    }
}
