//! The cleartext hello exchange that picks the protocol version before the handshake.
//!
//! The initiator offers the versions it speaks; the responder answers with the highest one both
//! speak, or refuses with the list it speaks. The version names the whole protocol above the
//! channel (the payload messages), so an old programmer and a new pump can still agree.
//!
//! The hellos travel in the clear, so a man-in-the-middle could strike the newest version from the
//! offer to force an older one. Both sides therefore feed the exact bytes of both hellos into the
//! Noise prologue ([`prologue`]): if either side saw different hellos, the handshake fails.
//!
//! Wire forms (each is one frame body):
//!
//! | message        | bytes                                                   |
//! |----------------|---------------------------------------------------------|
//! | offer          | `ITB`, count (1 to 16), that many versions (1 to 255)   |
//! | accept         | `ITB`, `0x01`, the chosen version                       |
//! | refuse         | `ITB`, `0x00`, count (1 to 16), the responder's versions |
//!
//! # Invariants
//! - A [`VersionSet`] is never empty, never holds version 0, holds at most
//!   [`MAX_OFFERED_VERSIONS`] versions, so every hello fits in [`HELLO_MAX_LEN`] bytes.
//! - Parsing accepts exactly these forms: no trailing bytes, no duplicate versions.

use std::fmt;

/// The first bytes of every hello.
pub const HELLO_MAGIC: &[u8; 3] = b"ITB";

/// The protocol version this code was written for.
pub const PROTOCOL_VERSION: u8 = 2;

/// The most versions one side may offer.
pub const MAX_OFFERED_VERSIONS: usize = 16;

/// The longest hello body: a refusal listing [`MAX_OFFERED_VERSIONS`] versions (21 bytes).
pub const HELLO_MAX_LEN: usize = HELLO_MAGIC.len() + 2 + MAX_OFFERED_VERSIONS;

const ACCEPT: u8 = 0x01;
const REFUSE: u8 = 0x00;
const PROLOGUE_LABEL: &[u8] = b"ITB-link hello v1\0";

/// Why a set of versions is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// No version at all.
    #[error("at least one protocol version must be offered")]
    Empty,
    /// Version 0, which is reserved.
    #[error("protocol version 0 is reserved")]
    Zero,
    /// More than [`MAX_OFFERED_VERSIONS`].
    #[error("{count} protocol versions offered; at most {max} may be")]
    TooMany {
        /// Versions given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A version given twice.
    #[error("protocol version {0} is given twice")]
    Duplicate(u8),
}

/// A non-empty set of protocol versions (1 to 255), at most [`MAX_OFFERED_VERSIONS`] of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionSet {
    bits: [u64; 4],
}

impl Default for VersionSet {
    /// [`VersionSet::CURRENT`].
    fn default() -> Self {
        Self::CURRENT
    }
}

impl fmt::Debug for VersionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for VersionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, version) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{version}")?;
        }
        Ok(())
    }
}

impl VersionSet {
    /// Only [`PROTOCOL_VERSION`].
    pub const CURRENT: VersionSet = {
        assert!(PROTOCOL_VERSION > 0 && PROTOCOL_VERSION < 64);
        VersionSet { bits: [1 << PROTOCOL_VERSION, 0, 0, 0] }
    };

    /// The set of `versions`, in any order.
    ///
    /// # Errors
    /// A [`VersionError`] if the list is empty, holds 0 or a duplicate, or is too long.
    pub fn new(versions: &[u8]) -> Result<Self, VersionError> {
        if versions.is_empty() {
            return Err(VersionError::Empty);
        }
        if versions.len() > MAX_OFFERED_VERSIONS {
            return Err(VersionError::TooMany { count: versions.len(), max: MAX_OFFERED_VERSIONS });
        }
        let mut set = Self { bits: [0; 4] };
        for &version in versions {
            if version == 0 {
                return Err(VersionError::Zero);
            }
            if set.contains(version) {
                return Err(VersionError::Duplicate(version));
            }
            set.bits[usize::from(version / 64)] |= 1 << (version % 64);
        }
        Ok(set)
    }

    /// The set holding `version` alone.
    ///
    /// # Errors
    /// [`VersionError::Zero`] for version 0.
    pub fn only(version: u8) -> Result<Self, VersionError> {
        Self::new(&[version])
    }

    /// Whether `version` is in the set.
    #[must_use]
    pub fn contains(&self, version: u8) -> bool {
        self.bits[usize::from(version / 64)] & (1 << (version % 64)) != 0
    }

    /// The versions, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (1..=u8::MAX).filter(|&version| self.contains(version))
    }

    /// How many versions the set holds (1 to [`MAX_OFFERED_VERSIONS`]).
    #[must_use]
    pub fn len(&self) -> usize {
        self.bits.iter().map(|word| word.count_ones() as usize).sum()
    }

    /// Always false: a set is never empty (here for the convention of `len`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest version in both sets, if any.
    #[must_use]
    pub fn highest_common(&self, other: &VersionSet) -> Option<u8> {
        (1..=u8::MAX).rev().find(|&version| self.contains(version) && other.contains(version))
    }

    /// The versions as the bytes of a hello list: count, then versions lowest first.
    fn encode_list(&self, out: &mut Vec<u8>) {
        let versions: Vec<u8> = self.iter().collect();
        // At most MAX_OFFERED_VERSIONS (16) by construction.
        out.push(u8::try_from(versions.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&versions);
    }

    /// Reads a hello list (count, then versions) that must end the body.
    fn decode_list(bytes: &[u8]) -> Result<Self, HelloError> {
        let (&count, versions) = bytes.split_first().ok_or(HelloError::Truncated)?;
        if usize::from(count) != versions.len() {
            return Err(HelloError::BadLength);
        }
        Self::new(versions).map_err(HelloError::Versions)
    }
}

/// Why a hello could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The body does not start with `ITB`: not this protocol.
    #[error("the peer does not speak the ITB link protocol (no 'ITB' hello)")]
    NotItb,
    /// The body ends too early.
    #[error("the hello is cut short")]
    Truncated,
    /// The count does not match the bytes that follow, or bytes follow the end.
    #[error("the hello's length does not match its content")]
    BadLength,
    /// The answer is neither accept nor refuse.
    #[error("the hello answer has unknown kind {0:#04x}")]
    UnknownAnswer(u8),
    /// The versions listed are not a valid set.
    #[error("the hello lists invalid versions: {0}")]
    Versions(VersionError),
}

/// The responder's answer to an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloAnswer {
    /// Go on with this version.
    Accept(u8),
    /// No version in common; these are the ones the responder speaks.
    Refuse(VersionSet),
}

/// The initiator's offer of `versions`.
#[must_use]
pub fn encode_offer(versions: &VersionSet) -> Vec<u8> {
    let mut body = Vec::with_capacity(HELLO_MAX_LEN);
    body.extend_from_slice(HELLO_MAGIC);
    versions.encode_list(&mut body);
    body
}

/// Read an initiator's offer.
///
/// # Errors
/// A [`HelloError`] if `body` is not exactly an offer.
pub fn decode_offer(body: &[u8]) -> Result<VersionSet, HelloError> {
    VersionSet::decode_list(strip_magic(body)?)
}

/// The responder's answer.
#[must_use]
pub fn encode_answer(answer: &HelloAnswer) -> Vec<u8> {
    let mut body = Vec::with_capacity(HELLO_MAX_LEN);
    body.extend_from_slice(HELLO_MAGIC);
    match answer {
        HelloAnswer::Accept(version) => body.extend_from_slice(&[ACCEPT, *version]),
        HelloAnswer::Refuse(versions) => {
            body.push(REFUSE);
            versions.encode_list(&mut body);
        }
    }
    body
}

/// Read a responder's answer.
///
/// # Errors
/// A [`HelloError`] if `body` is not exactly an answer.
pub fn decode_answer(body: &[u8]) -> Result<HelloAnswer, HelloError> {
    let (&kind, rest) = strip_magic(body)?.split_first().ok_or(HelloError::Truncated)?;
    match kind {
        ACCEPT => match rest {
            [0] => Err(HelloError::Versions(VersionError::Zero)),
            [version] => Ok(HelloAnswer::Accept(*version)),
            [] => Err(HelloError::Truncated),
            _ => Err(HelloError::BadLength),
        },
        REFUSE => VersionSet::decode_list(rest).map(HelloAnswer::Refuse),
        other => Err(HelloError::UnknownAnswer(other)),
    }
}

/// The Noise prologue that binds the handshake to both hellos exactly as each side saw them.
#[must_use]
pub fn prologue(offer: &[u8], answer: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PROLOGUE_LABEL.len() + 4 + offer.len() + answer.len());
    bytes.extend_from_slice(PROLOGUE_LABEL);
    for part in [offer, answer] {
        // Each hello is at most HELLO_MAX_LEN bytes, far below u16::MAX.
        bytes.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    bytes
}

fn strip_magic(body: &[u8]) -> Result<&[u8], HelloError> {
    body.strip_prefix(HELLO_MAGIC.as_slice()).ok_or(HelloError::NotItb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(versions: &[u8]) -> VersionSet {
        VersionSet::new(versions).expect("valid set")
    }

    #[test]
    fn version_sets_are_checked() {
        assert_eq!(VersionSet::new(&[]), Err(VersionError::Empty));
        assert_eq!(VersionSet::new(&[1, 0]), Err(VersionError::Zero));
        assert_eq!(VersionSet::new(&[3, 1, 3]), Err(VersionError::Duplicate(3)));
        let seventeen: Vec<u8> = (1..=17).collect();
        assert_eq!(VersionSet::new(&seventeen), Err(VersionError::TooMany { count: 17, max: 16 }));
        let odd = set(&[255, 64, 63, 1]);
        assert_eq!(odd.iter().collect::<Vec<_>>(), vec![1, 63, 64, 255]);
        assert_eq!(odd.len(), 4);
        assert_eq!(VersionSet::default(), set(&[PROTOCOL_VERSION]));
    }

    #[test]
    fn highest_common_version_is_chosen() {
        assert_eq!(set(&[1, 2, 3]).highest_common(&set(&[2, 3, 200])), Some(3));
        assert_eq!(set(&[1]).highest_common(&set(&[2])), None);
    }

    #[test]
    fn hellos_round_trip_and_have_the_documented_bytes() {
        let offer = encode_offer(&set(&[2, 1]));
        assert_eq!(offer, b"ITB\x02\x01\x02");
        assert_eq!(decode_offer(&offer), Ok(set(&[1, 2])));
        let accept = encode_answer(&HelloAnswer::Accept(2));
        assert_eq!(accept, b"ITB\x01\x02");
        assert_eq!(decode_answer(&accept), Ok(HelloAnswer::Accept(2)));
        let refuse = encode_answer(&HelloAnswer::Refuse(set(&[5])));
        assert_eq!(refuse, b"ITB\x00\x01\x05");
        assert_eq!(decode_answer(&refuse), Ok(HelloAnswer::Refuse(set(&[5]))));
        let sixteen = set(&(1..=16).collect::<Vec<u8>>());
        assert_eq!(encode_offer(&sixteen).len(), HELLO_MAX_LEN - 1);
        assert_eq!(encode_answer(&HelloAnswer::Refuse(sixteen)).len(), HELLO_MAX_LEN);
    }

    #[test]
    fn malformed_hellos_are_refused() {
        assert_eq!(decode_offer(b"ITX\x01\x01"), Err(HelloError::NotItb));
        assert_eq!(decode_offer(b"ITB"), Err(HelloError::Truncated));
        assert_eq!(decode_offer(b"ITB\x02\x01"), Err(HelloError::BadLength));
        assert_eq!(decode_offer(b"ITB\x01\x01\x02"), Err(HelloError::BadLength));
        assert_eq!(decode_offer(b"ITB\x00"), Err(HelloError::Versions(VersionError::Empty)));
        assert_eq!(decode_offer(b"ITB\x02\x01\x01"), Err(HelloError::Versions(VersionError::Duplicate(1))));
        assert_eq!(decode_answer(b"ITB\x01"), Err(HelloError::Truncated));
        assert_eq!(decode_answer(b"ITB\x01\x01\x01"), Err(HelloError::BadLength));
        assert_eq!(decode_answer(b"ITB\x01\x00"), Err(HelloError::Versions(VersionError::Zero)));
        assert_eq!(decode_answer(b"ITB\x07\x01"), Err(HelloError::UnknownAnswer(7)));
    }

    #[test]
    fn prologue_differs_when_either_hello_differs() {
        let base = prologue(b"ITB\x02\x01\x02", b"ITB\x01\x02");
        assert_ne!(base, prologue(b"ITB\x01\x01", b"ITB\x01\x02"));
        assert_ne!(base, prologue(b"ITB\x02\x01\x02", b"ITB\x01\x01"));
        // Lengths keep the boundary between the two hellos unambiguous.
        assert_ne!(prologue(b"ab", b"c"), prologue(b"a", b"bc"));
    }
}
