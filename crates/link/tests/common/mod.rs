//! Keys and configs shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different part")]

use itb_link::transport::memory::{MemoryPair, drain_events};
use itb_link::{Event, InitiatorConfig, Instant, KeyPair, ResponderConfig, Role, TrustedPeers};

/// A pump paired with one clinician programmer and one PTM, plus a stranger.
pub struct Devices {
    pub pump: KeyPair,
    pub clinician: KeyPair,
    pub patient: KeyPair,
    pub stranger: KeyPair,
}

impl Devices {
    pub fn new() -> Self {
        let generate = || KeyPair::generate().expect("key generation works");
        Self { pump: generate(), clinician: generate(), patient: generate(), stranger: generate() }
    }

    pub fn pump_config(&self) -> ResponderConfig {
        let mut trusted = TrustedPeers::new();
        trusted.add(self.clinician.public(), Role::Clinician).expect("room for the clinician");
        trusted.add(self.patient.public(), Role::Patient).expect("room for the PTM");
        ResponderConfig::new(self.pump.clone(), trusted)
    }

    pub fn config_for(&self, keys: &KeyPair) -> InitiatorConfig {
        InitiatorConfig::new(keys.clone(), self.pump.public())
    }

    /// A clinician session, established at `t(0)`, with both sides' events drained.
    pub fn established_clinician(&self) -> MemoryPair {
        let mut pair = MemoryPair::new(self.config_for(&self.clinician), self.pump_config(), t(0));
        pair.run(t(0));
        let initiator_events = drain_events(&mut pair.initiator);
        let responder_events = drain_events(&mut pair.responder);
        assert!(matches!(initiator_events.as_slice(), [Event::Established { .. }]), "{initiator_events:?}");
        assert!(matches!(responder_events.as_slice(), [Event::Established { .. }]), "{responder_events:?}");
        pair
    }
}

/// The instant `ms` milliseconds after the epoch.
pub fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Whether any event is an `Established` or a `Payload`.
pub fn delivered_anything(events: &[Event]) -> bool {
    events.iter().any(|event| matches!(event, Event::Established { .. } | Event::Payload(_)))
}
