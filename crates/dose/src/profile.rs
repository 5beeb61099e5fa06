//! Device profiles: every constant of a pump model, each with its source.
//!
//! The files live in `profiles/*.toml` at the workspace root and are compiled in, so that a
//! profile named on a command line is found without touching the file system; a profile may
//! also be read from any TOML text. Each entry is `{ value = "...", source = "..." }`; a source
//! that begins `[model]` marks a value we chose where no public figure was found.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::quantity::{Duration, Mass, Volume, VolumeRate};

/// The profiles shipped with itb, by name.
pub const BUILT_IN: [(&str, &str); 2] = [
    ("synchromed-ii-20", include_str!("../../../profiles/synchromed-ii-20.toml")),
    ("synchromed-ii-40", include_str!("../../../profiles/synchromed-ii-40.toml")),
];

/// The longest service life a pump may have: 7 years of 365.25 days (2556.75 days). No profile
/// may say more, and a pump never runs past it.
pub const SERVICE_LIFE_MAX: Duration = Duration::hours(61_362);

/// A value with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Its source, or `[model] ...`.
    pub source: String,
}

impl<T> Sourced<T> {
    /// True when the value is our model's choice, not a published figure.
    pub fn is_model(&self) -> bool {
        self.source.starts_with("[model]")
    }
}

/// An entry as written: `{ value = "20 mL", source = "..." }`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    value: String,
    source: String,
}

impl<T: fmt::Display> Serialize for Sourced<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Entry { value: self.value.to_string(), source: self.source.clone() }.serialize(serializer)
    }
}

/// An entry reads through its value's text form (so `parse(print(x)) == x` carries it), and
/// must say where the value comes from.
impl<'de, T> Deserialize<'de> for Sourced<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entry = Entry::deserialize(deserializer)?;
        if entry.source.trim().is_empty() {
            return Err(serde::de::Error::custom(format!(
                "the entry '{}' has no source; give its source or mark it [model]",
                entry.value
            )));
        }
        let value = entry
            .value
            .trim()
            .parse()
            .map_err(|e: T::Err| serde::de::Error::custom(format!("'{}': {e}", entry.value)))?;
        Ok(Sourced { value, source: entry.source })
    }
}

/// The reservoir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservoir {
    /// Most drug it holds.
    pub capacity: Sourced<Volume>,
    /// The low-reservoir alarm threshold unless the clinician programs another.
    pub low_alarm_default: Sourced<Volume>,
    /// A gap between expected and withdrawn volume at refill above this is potentially
    /// consequential (pocket fill, over-infusion, catheter leak).
    pub refill_gap_warning: Sourced<Volume>,
}

/// The path drug takes from the reservoir to the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FluidPath {
    /// Inside the pump, from the reservoir to the catheter port.
    pub pump_tubing: Sourced<Volume>,
    /// Each centimetre of catheter.
    pub catheter_per_cm: Sourced<Volume>,
}

impl FluidPath {
    /// Tubing plus a catheter of `catheter_cm` centimetres; `None` on overflow.
    pub fn dead_volume(&self, catheter_cm: u32) -> Option<Volume> {
        self.catheter_per_cm.value.checked_mul(u64::from(catheter_cm))?.checked_add(self.pump_tubing.value)
    }
}

/// The flow rates the pump can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Least programmable rate.
    pub min: Sourced<VolumeRate>,
    /// Greatest programmable rate.
    pub max: Sourced<VolumeRate>,
    /// The rate of a priming bolus (a bridge bolus runs at the old concentration's therapy rate).
    pub priming: Sourced<VolumeRate>,
}

/// What the firmware refuses beyond, whatever the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest bolus of any kind.
    pub bolus_max: Sourced<Mass>,
    /// Shortest bolus.
    pub bolus_duration_min: Sourced<Duration>,
    /// Longest bolus (a bolus runs in place of the therapy).
    pub bolus_duration_max: Sourced<Duration>,
    /// Most flex steps in a day.
    pub flex_steps_max: Sourced<u64>,
    /// Shortest flex step.
    pub flex_step_min: Sourced<Duration>,
    /// Shortest PTM lockout.
    pub ptm_lockout_min: Sourced<Duration>,
    /// Most PTM boluses in any 24 hours.
    pub ptm_per_day_max: Sourced<u64>,
}

/// The battery model, in abstract charge units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Battery {
    /// Charge at implant.
    pub capacity: Sourced<u64>,
    /// Used each day by the electronics.
    pub per_day: Sourced<u64>,
    /// Used per mL the motor moves.
    pub per_ml: Sourced<u64>,
    /// Used per alarm tone.
    pub per_tone: Sourced<u64>,
    /// Used per telemetry session.
    pub per_session: Sourced<u64>,
    /// The pump stops at this age whatever the charge.
    pub service_life_max: Sourced<Duration>,
    /// The Elective Replacement Indicator comes this long before End of Service.
    pub eri_before_eos: Sourced<Duration>,
}

/// Alarm tones and detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alarms {
    /// Between tones of a critical alarm.
    pub critical_tone_interval: Sourced<Duration>,
    /// Between tones of a non-critical alarm.
    pub non_critical_tone_interval: Sourced<Duration>,
    /// Time to notice a stalled motor while it is commanded to run.
    pub stall_detection: Sourced<Duration>,
    /// The labelled accuracy: delivery above the programmed rate by more than this, in parts
    /// per million, is over-infusion.
    pub rate_error_labelled_max_ppm: Sourced<u64>,
}

/// The event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// Entries kept before the oldest is overwritten.
    pub capacity: Sourced<u64>,
}

/// A pump model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "unchecked::Unchecked")]
pub struct DeviceProfile {
    /// Short name (`synchromed-ii-20`).
    pub name: String,
    /// What it models.
    pub description: String,
    /// The reservoir.
    pub reservoir: Reservoir,
    /// The fluid path.
    pub fluid_path: FluidPath,
    /// The rates.
    pub rates: Rates,
    /// The firmware's hard limits.
    pub limits: Limits,
    /// The battery.
    pub battery: Battery,
    /// Alarms.
    pub alarms: Alarms,
    /// The event log.
    pub log: Log,
}

/// Why a profile could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// No built-in profile of that name.
    #[error("there is no device profile named '{name}'; the built-in profiles are: {known}")]
    Unknown {
        /// The name given.
        name: String,
        /// The names there are.
        known: String,
    },
    /// Not a valid profile file.
    #[error("the device profile is not valid: {0}")]
    Syntax(String),
    /// Entries that contradict each other.
    #[error("device profile is inconsistent: {0}")]
    Inconsistent(String),
}

impl DeviceProfile {
    /// A built-in profile by name.
    pub fn built_in(name: &str) -> Result<Self, ProfileError> {
        let (_, text) = BUILT_IN.iter().find(|(known, _)| *known == name).ok_or_else(|| ProfileError::Unknown {
            name: name.to_owned(),
            known: BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })?;
        Self::from_toml(text)
    }

    /// Reads a profile from TOML text and checks that its entries agree.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        ::toml::from_str(text).map_err(|e| ProfileError::Syntax(crate::toml::error_sentence(text, &e)))
    }

    fn check(&self) -> Result<(), ProfileError> {
        let r = &self.reservoir;
        if r.capacity.value.is_zero() || r.low_alarm_default.value >= r.capacity.value {
            return Err(ProfileError::Inconsistent(format!(
                "the low-reservoir alarm ({}) must be below the capacity ({})",
                r.low_alarm_default.value, r.capacity.value
            )));
        }
        let rates = &self.rates;
        if rates.min.value.is_zero() || rates.min.value > rates.max.value || rates.priming.value > rates.max.value {
            return Err(ProfileError::Inconsistent(format!(
                "rates must satisfy 0 < min ({}) <= max ({}) and priming ({}) <= max",
                rates.min.value, rates.max.value, rates.priming.value
            )));
        }
        let b = &self.battery;
        if b.capacity.value == 0 || b.per_day.value == 0 {
            return Err(ProfileError::Inconsistent("the battery needs a capacity and a daily use".to_owned()));
        }
        if b.service_life_max.value > SERVICE_LIFE_MAX {
            return Err(ProfileError::Inconsistent(format!(
                "battery.service_life_max is {}, more than 7 x 365.25 days (2556.75 days): no pump runs longer; \
                 write at most \"2556.75 day\"",
                b.service_life_max.value
            )));
        }
        if b.eri_before_eos.value >= b.service_life_max.value {
            return Err(ProfileError::Inconsistent(format!(
                "battery.eri_before_eos ({}) must be shorter than battery.service_life_max ({})",
                b.eri_before_eos.value, b.service_life_max.value
            )));
        }
        let a = &self.alarms;
        if a.critical_tone_interval.value.is_zero() || a.non_critical_tone_interval.value.is_zero() {
            return Err(ProfileError::Inconsistent("alarm tone intervals must be more than 0".to_owned()));
        }
        if self.log.capacity.value == 0 || self.log.capacity.value > 65_536 {
            return Err(ProfileError::Inconsistent("the event log holds 1 to 65536 entries".to_owned()));
        }
        if self.limits.flex_steps_max.value == 0 || self.limits.ptm_per_day_max.value == 0 {
            return Err(ProfileError::Inconsistent("flex steps and PTM boluses per day must be at least 1".to_owned()));
        }
        Ok(())
    }

    /// Battery life at a steady daily volume, without alarms or telemetry: the model's curve,
    /// capped at the service life.
    pub fn battery_life_at(&self, daily_volume: VolumeRate) -> Duration {
        let b = &self.battery;
        // Charge per day, scaled by a million so that per-nanolitre use stays whole.
        let per_day_scaled = u128::from(b.per_day.value) * 1_000_000
            + u128::from(b.per_ml.value) * u128::from(daily_volume.as_nl_per_day());
        let life_ms =
            u128::from(b.capacity.value) * 1_000_000 * u128::from(crate::quantity::MS_PER_DAY) / per_day_scaled;
        let life = Duration::ms(u64::try_from(life_ms).unwrap_or(u64::MAX));
        life.min(b.service_life_max.value)
    }
}

/// Reading a profile (from TOML or from a pump's snapshot) checks it, so that an inconsistent
/// profile (a zero tone interval, an empty log) can never be built.
mod unchecked {
    use super::{Alarms, Battery, DeviceProfile, FluidPath, Limits, Log, ProfileError, Rates, Reservoir};

    /// The fields of a [`DeviceProfile`], not yet checked.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Unchecked {
        name: String,
        description: String,
        reservoir: Reservoir,
        fluid_path: FluidPath,
        rates: Rates,
        limits: Limits,
        battery: Battery,
        alarms: Alarms,
        log: Log,
    }

    impl TryFrom<Unchecked> for DeviceProfile {
        type Error = ProfileError;

        fn try_from(raw: Unchecked) -> Result<Self, ProfileError> {
            let profile = DeviceProfile {
                name: raw.name,
                description: raw.description,
                reservoir: raw.reservoir,
                fluid_path: raw.fluid_path,
                rates: raw.rates,
                limits: raw.limits,
                battery: raw.battery,
                alarms: raw.alarms,
                log: raw.log,
            };
            profile.check()?;
            Ok(profile)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_read_and_every_entry_has_a_source() {
        for (name, _) in BUILT_IN {
            let profile = DeviceProfile::built_in(name).expect("built-in profile reads");
            assert_eq!(profile.name, name);
        }
        let small = DeviceProfile::built_in("synchromed-ii-20").expect("reads");
        assert_eq!(small.reservoir.capacity.value, Volume::ml(20));
        assert_eq!(small.reservoir.refill_gap_warning.value, Volume::ml(1));
        assert!(small.fluid_path.pump_tubing.is_model());
        let large = DeviceProfile::built_in("synchromed-ii-40").expect("reads");
        assert_eq!(large.reservoir.refill_gap_warning.value, Volume::ml(2));
        assert_eq!(small.limits.flex_steps_max.value, 13);
        assert_eq!(small.battery.eri_before_eos.value, Duration::days(90));
        // 0.2 mL tubing + 50 cm x 0.0022 mL = 0.31 mL.
        assert_eq!(small.fluid_path.dead_volume(50), Some(Volume::nl(310_000)));
    }

    #[test]
    fn battery_life_is_five_to_seven_years_for_typical_volumes() {
        let profile = DeviceProfile::built_in("synchromed-ii-20").expect("reads");
        let years = |ml_per_day_micro: u64| {
            let life = profile.battery_life_at(VolumeRate::nl_per_day(ml_per_day_micro * 1_000));
            life.as_ms() as f64 / crate::quantity::MS_PER_DAY as f64 / 365.25
        };
        // 0.1 mL/day would last 7.5 years: capped at the 7-year service life.
        assert!((years(100) - 7.0).abs() < 0.01, "{}", years(100));
        assert!((years(1_000) - 6.06).abs() < 0.01, "{}", years(1_000));
        assert!((years(2_000) - 5.0).abs() < 0.01, "{}", years(2_000));
        for micro in [50, 200, 500, 1_000, 1_500, 2_000] {
            assert!((4.99..=7.001).contains(&years(micro)), "{micro}: {}", years(micro));
        }
    }

    #[test]
    fn serde_round_trips_and_refuses_an_inconsistent_profile() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Holder {
            profile: DeviceProfile,
        }
        let profile = DeviceProfile::built_in("synchromed-ii-40").expect("reads");
        let text = ::toml::to_string(&Holder { profile: profile.clone() }).expect("serialises");
        let back: Holder = ::toml::from_str(&text).expect("reads back");
        assert_eq!(back.profile, profile);
        let mut broken = profile;
        broken.log.capacity.value = 0;
        let text = ::toml::to_string(&Holder { profile: broken }).expect("serialises");
        let error = ::toml::from_str::<Holder>(&text).map(|_| ()).expect_err("inconsistent");
        assert!(error.to_string().contains("event log holds 1 to 65536"), "{error}");
    }

    #[test]
    fn bad_entries_name_their_line_and_what_is_wrong() {
        let text = BUILT_IN[0].1;
        let bad_value = text.replace("value = \"20 mL\"", "value = \"20 mg\"");
        let error = DeviceProfile::from_toml(&bad_value).expect_err("mg is no volume").to_string();
        assert!(error.contains("line 11") && error.contains("'20 mg'"), "{error}");
        let no_source =
            text.replace("source = \"leaflet: 20 mL and 40 mL reservoirs; Medtronic 8637-20\"", "source = \"\"");
        let error = DeviceProfile::from_toml(&no_source).expect_err("no source").to_string();
        assert!(error.contains("no source"), "{error}");
        let unknown = text.replace("[log]", "[log]\ncolour = \"blue\"");
        assert!(DeviceProfile::from_toml(&unknown).is_err());
    }

    #[test]
    fn the_service_life_is_at_most_seven_years_of_365_25_days() {
        assert_eq!(SERVICE_LIFE_MAX, Duration::ms(2_556_750 * 86_400));
        for (name, _) in BUILT_IN {
            let profile = DeviceProfile::built_in(name).expect("reads");
            assert!(profile.battery.service_life_max.value <= SERVICE_LIFE_MAX, "{name}");
        }
        let text = BUILT_IN[0].1;
        let over = text.replace("value = \"2556.75 day\"", "value = \"2557 day\"");
        assert_ne!(over, text, "the profile writes its service life as 2556.75 day");
        let error = DeviceProfile::from_toml(&over).expect_err("six hours too long").to_string();
        assert!(
            error.contains("battery.service_life_max") && error.contains("2557 day") && error.contains("2556.75 days"),
            "{error}"
        );
        let eri = text.replace("value = \"90 day\"", "value = \"2556.75 day\"");
        let error = DeviceProfile::from_toml(&eri).expect_err("ERI as long as the life").to_string();
        assert!(error.contains("battery.eri_before_eos") && error.contains("battery.service_life_max"), "{error}");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let error = DeviceProfile::built_in("synchromed-3").expect_err("unknown");
        assert!(error.to_string().contains("synchromed-ii-20, synchromed-ii-40"), "{error}");
    }
}
