//! The pump's non-volatile memory: the whole [`Pump`] (firmware state and the world's truth) as
//! bytes, and back.
//!
//! A device process writes a snapshot after every change and restarts from the last one after
//! being killed; how the bytes are stored (atomically) is its business, not this crate's.
//!
//! # Format
//! A CBOR map `{ "version": 2, "crc32": u32, "pump": bytes }`, where `pump` is the CBOR encoding
//! of the pump (serde, field names as in the source: `{ "firmware": .., "world": .. }`) and
//! `crc32` is the CRC-32 (IEEE) of those bytes. Prescriptions inside are their canonical TOML
//! text, read back with every check.
//!
//! Versions: 1, the pump as one struct (refused: pre-release, nothing to migrate); 2, firmware
//! and world apart, with typed log events and the world's ledger keeping the drug in tissue by
//! cause (`ledger.tissue`).
//!
//! # Invariants
//! - [`from_snapshot`] never panics: any byte string gives a pump or a [`SnapshotError`].
//! - An unknown version, a checksum that does not match, bytes that do not decode, and a pump
//!   that breaks an invariant (mass balance, the event log's bounds, a compiled program that is
//!   not its prescription's) are each refused with their own error.
//! - `to_snapshot(&from_snapshot(bytes)?) == bytes` for every snapshot `to_snapshot` wrote:
//!   encoding is deterministic.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Pump;

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 2;

/// Why a snapshot was not restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a snapshot: not CBOR, truncated, trailing bytes, or a field of the wrong shape.
    #[error("the pump snapshot cannot be read: {0}")]
    Decode(String),
    /// Written by another format version.
    #[error("the pump snapshot has format version {found}; this build reads only version {supported}")]
    UnknownVersion {
        /// The version in the snapshot.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The pump's bytes do not match their checksum: the memory is corrupt.
    #[error("the pump snapshot is corrupt: its checksum is {stored:#010x} but its content gives {computed:#010x}")]
    Checksum {
        /// The checksum stored.
        stored: u32,
        /// The checksum of the content.
        computed: u32,
    },
    /// Readable, but the pump it holds breaks an invariant; it is not run.
    #[error("the pump snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    version: u32,
    crc32: u32,
    #[serde(with = "bytes")]
    pump: Vec<u8>,
}

/// Only the version: read first, so that another version's layout is reported as such.
#[derive(Deserialize)]
struct Header {
    version: u32,
}

/// Writes the whole pump as snapshot bytes.
pub fn to_snapshot(pump: &Pump) -> Vec<u8> {
    let body = encode(pump);
    encode(&Envelope { version: SNAPSHOT_VERSION, crc32: crc32(&body), pump: body })
}

/// Restores a pump from snapshot bytes, refusing anything unknown, corrupt or inconsistent.
pub fn from_snapshot(bytes: &[u8]) -> Result<Pump, SnapshotError> {
    let header: Header = decode(bytes, "the snapshot")?;
    if header.version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnknownVersion { found: header.version, supported: SNAPSHOT_VERSION });
    }
    let envelope: Envelope = decode(bytes, "the snapshot")?;
    let computed = crc32(&envelope.pump);
    if computed != envelope.crc32 {
        return Err(SnapshotError::Checksum { stored: envelope.crc32, computed });
    }
    let pump: Pump = decode(&envelope.pump, "the pump")?;
    pump.check_restored().map_err(SnapshotError::Inconsistent)?;
    Ok(pump)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and every type in a pump serialises (no maps with non-string
    // keys, no unsized sequences): an error here is a bug in this crate, not bad input.
    ciborium::into_writer(value, &mut out).expect("a pump always encodes to CBOR in memory");
    out
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, SnapshotError> {
    let mut rest = bytes;
    let value = ciborium::from_reader(&mut rest).map_err(|error| {
        let why = match error {
            ciborium::de::Error::Io(_) => "it ends too soon".to_owned(),
            ciborium::de::Error::Syntax(offset) => format!("it is not CBOR at byte {offset}"),
            ciborium::de::Error::Semantic(Some(offset), message) => format!("{message} (at byte {offset})"),
            ciborium::de::Error::Semantic(None, message) => message,
            ciborium::de::Error::RecursionLimitExceeded => "it is nested too deeply".to_owned(),
        };
        SnapshotError::Decode(format!("{what}: {why}"))
    })?;
    if !rest.is_empty() {
        return Err(SnapshotError::Decode(format!("{what}: {} bytes follow its end", rest.len())));
    }
    Ok(value)
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib and PNG).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// A byte vector as a CBOR byte string (serde writes `Vec<u8>` as an array of integers).
mod bytes {
    use std::fmt;

    use serde::de::{Deserializer, Error, Visitor};
    use serde::ser::Serializer;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl Visitor<'_> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }
        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use itb_dose::{Concentration, DeviceProfile, Volume};
    use proptest::prelude::*;

    use super::*;
    use crate::{Implant, Instant, PumpTime};

    fn pump() -> Pump {
        let prescription = itb_dose::toml::from_toml(
            "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n[ptm]\nbolus_dose = \"25 micrograms\"\n\
             bolus_duration = \"10 min\"\nlockout = \"3 h\"\nmax_boluses_per_day = 4\n",
        )
        .expect("valid prescription");
        let mut pump = Pump::implant(Implant {
            profile: DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
            at: Instant::from_ms(1_790_000_000_000),
            clock: PumpTime::from_ms(1_790_000_000_000),
            catheter_cm: 50,
            rate_error_ppm: 0,
            fill: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            prescription,
        })
        .expect("implant");
        pump.advance_to(Instant::from_ms(1_790_000_000_000 + 30 * 86_400_000));
        pump
    }

    fn wrap(body: Vec<u8>) -> Vec<u8> {
        encode(&Envelope { version: SNAPSHOT_VERSION, crc32: crc32(&body), pump: body })
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn unknown_versions_and_bad_checksums_are_named() {
        let body = encode(&pump());
        for version in [1, SNAPSHOT_VERSION + 1] {
            let other = encode(&Envelope { version, crc32: crc32(&body), pump: body.clone() });
            let error = from_snapshot(&other).map(|_| ()).expect_err("another version");
            assert_eq!(error, SnapshotError::UnknownVersion { found: version, supported: SNAPSHOT_VERSION });
            assert_eq!(
                error.to_string(),
                format!("the pump snapshot has format version {version}; this build reads only version 2")
            );
        }
        let wrong = encode(&Envelope { version: SNAPSHOT_VERSION, crc32: crc32(&body) ^ 1, pump: body });
        assert!(matches!(from_snapshot(&wrong), Err(SnapshotError::Checksum { .. })));
        let mut trailing = to_snapshot(&pump());
        trailing.push(0);
        let error = from_snapshot(&trailing).map(|_| ()).expect_err("trailing byte");
        assert!(error.to_string().contains("1 bytes follow"), "{error}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The checksum catches most corruption; behind it, the pump's own decoding and checks
        /// must hold too: a body with a valid checksum and flipped bytes never panics.
        #[test]
        fn corrupt_bodies_with_valid_checksums_never_panic(
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
            cut in any::<Option<prop::sample::Index>>(),
        ) {
            let mut body = encode(&pump());
            for (index, mask) in flips {
                let at = index.index(body.len());
                body[at] ^= mask;
            }
            if let Some(cut) = cut {
                body.truncate(cut.index(body.len()));
            }
            let _ = from_snapshot(&wrap(body));
        }
    }
}
