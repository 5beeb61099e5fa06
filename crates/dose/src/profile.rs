//! Device profiles: every constant of a pump model, each with its source.
//!
//! The files live in `profiles/*.toml` at the workspace root and are compiled in, so that a
//! profile named on a command line is found without touching the file system; a profile may
//! also be read from any TOML text. Each entry is `{ value = "...", source = "..." }`; a source
//! that begins `[model]` marks a value we chose where no public figure was found.

use std::str::FromStr;

use serde::Deserialize;

use crate::quantity::{QuantityError, Volume, VolumeRate};

/// The profiles shipped with itb, by name.
pub const BUILT_IN: [(&str, &str); 2] = [
    ("synchromed-ii-20", include_str!("../../../profiles/synchromed-ii-20.toml")),
    ("synchromed-ii-40", include_str!("../../../profiles/synchromed-ii-40.toml")),
];

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

/// The reservoir.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rates {
    /// Least programmable rate.
    pub min: Sourced<VolumeRate>,
    /// Greatest programmable rate.
    pub max: Sourced<VolumeRate>,
    /// The rate of priming and bridge boluses.
    pub priming: Sourced<VolumeRate>,
}

/// A pump model.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// An entry that is not a valid quantity.
    #[error("device profile entry {field}: {source}")]
    Quantity {
        /// The entry.
        field: &'static str,
        /// Why.
        source: QuantityError,
    },
    /// An entry without a source.
    #[error("device profile entry {field} has no source; give its source or mark it [model]")]
    NoSource {
        /// The entry.
        field: &'static str,
    },
    /// Entries that contradict each other.
    #[error("device profile is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    value: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    description: String,
    reservoir: RawReservoir,
    fluid_path: RawFluidPath,
    rates: RawRates,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReservoir {
    capacity: RawEntry,
    low_alarm_default: RawEntry,
    refill_gap_warning: RawEntry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFluidPath {
    pump_tubing: RawEntry,
    catheter_per_cm: RawEntry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRates {
    min: RawEntry,
    max: RawEntry,
    priming: RawEntry,
}

fn entry<T: FromStr<Err = QuantityError>>(field: &'static str, raw: RawEntry) -> Result<Sourced<T>, ProfileError> {
    if raw.source.trim().is_empty() {
        return Err(ProfileError::NoSource { field });
    }
    let value = raw.value.parse().map_err(|source| ProfileError::Quantity { field, source })?;
    Ok(Sourced { value, source: raw.source })
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
        let raw: RawProfile = ::toml::from_str(text).map_err(|e| ProfileError::Syntax(e.message().to_owned()))?;
        let profile = DeviceProfile {
            name: raw.name,
            description: raw.description,
            reservoir: Reservoir {
                capacity: entry("reservoir.capacity", raw.reservoir.capacity)?,
                low_alarm_default: entry("reservoir.low_alarm_default", raw.reservoir.low_alarm_default)?,
                refill_gap_warning: entry("reservoir.refill_gap_warning", raw.reservoir.refill_gap_warning)?,
            },
            fluid_path: FluidPath {
                pump_tubing: entry("fluid_path.pump_tubing", raw.fluid_path.pump_tubing)?,
                catheter_per_cm: entry("fluid_path.catheter_per_cm", raw.fluid_path.catheter_per_cm)?,
            },
            rates: Rates {
                min: entry("rates.min", raw.rates.min)?,
                max: entry("rates.max", raw.rates.max)?,
                priming: entry("rates.priming", raw.rates.priming)?,
            },
        };
        profile.check()?;
        Ok(profile)
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
        Ok(())
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
        // 0.2 mL tubing + 50 cm x 0.0022 mL = 0.31 mL.
        assert_eq!(small.fluid_path.dead_volume(50), Some(Volume::nl(310_000)));
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let error = DeviceProfile::built_in("synchromed-3").expect_err("unknown");
        assert!(error.to_string().contains("synchromed-ii-20, synchromed-ii-40"), "{error}");
    }
}
