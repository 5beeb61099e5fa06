//! Who a pump talks to: the short list of paired devices, each with its role.
//!
//! A pump is paired with its clinic's programmer(s) and with one patient therapy manager. The
//! list is small and fixed in size, as it would be in a device's memory, and the role comes from
//! the list, never from anything the peer says: a PTM cannot claim to be a clinician.
//!
//! # Invariants
//! - At most [`MAX_TRUSTED_PEERS`] entries; each public key at most once.

use std::fmt;

use crate::keys::PublicKey;

/// The most devices a pump is paired with at once.
pub const MAX_TRUSTED_PEERS: usize = 4;

/// What a paired device may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A clinician programmer: interrogates, programs, refills.
    Clinician,
    /// A patient therapy manager: asks for boluses within the clinician's limits.
    Patient,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Clinician => "clinician",
            Role::Patient => "patient",
        })
    }
}

/// Why a device could not be added to the trusted list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The list already has [`MAX_TRUSTED_PEERS`] entries.
    #[error("the pump is already paired with {max} devices; remove one before pairing another")]
    Full {
        /// The bound.
        max: usize,
    },
    /// The key is already on the list.
    #[error("key {key} is already paired as {role}")]
    AlreadyTrusted {
        /// The key.
        key: PublicKey,
        /// The role it has.
        role: Role,
    },
}

/// The devices a responder (pump) accepts, each with its role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedPeers {
    entries: Vec<(PublicKey, Role)>,
}

impl TrustedPeers {
    /// An empty list: every initiator is refused.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `key` with `role`.
    ///
    /// # Errors
    /// [`TrustError::Full`] or [`TrustError::AlreadyTrusted`]; the list is then unchanged.
    pub fn add(&mut self, key: PublicKey, role: Role) -> Result<(), TrustError> {
        if let Some(existing) = self.role_of(&key) {
            return Err(TrustError::AlreadyTrusted { key, role: existing });
        }
        if self.entries.len() >= MAX_TRUSTED_PEERS {
            return Err(TrustError::Full { max: MAX_TRUSTED_PEERS });
        }
        self.entries.push((key, role));
        Ok(())
    }

    /// Remove `key`; returns the role it had, if it was on the list.
    pub fn remove(&mut self, key: &PublicKey) -> Option<Role> {
        let index = self.entries.iter().position(|(known, _)| known == key)?;
        Some(self.entries.remove(index).1)
    }

    /// The role of `key`, if it is trusted.
    #[must_use]
    pub fn role_of(&self, key: &PublicKey) -> Option<Role> {
        self.entries.iter().find(|(known, _)| known == key).map(|&(_, role)| role)
    }

    /// The entries, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (PublicKey, Role)> + '_ {
        self.entries.iter().copied()
    }

    /// How many devices are trusted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no device is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey::from_bytes([byte; 32])
    }

    #[test]
    fn list_is_bounded_and_keys_are_unique() {
        let mut peers = TrustedPeers::new();
        for byte in 0..4 {
            peers.add(key(byte), Role::Patient).expect("room");
        }
        assert_eq!(peers.add(key(9), Role::Clinician), Err(TrustError::Full { max: 4 }));
        assert_eq!(
            peers.add(key(0), Role::Clinician),
            Err(TrustError::AlreadyTrusted { key: key(0), role: Role::Patient })
        );
        assert_eq!(peers.len(), 4);
        assert_eq!(peers.remove(&key(2)), Some(Role::Patient));
        assert_eq!(peers.remove(&key(2)), None);
        peers.add(key(9), Role::Clinician).expect("room again");
        assert_eq!(peers.role_of(&key(9)), Some(Role::Clinician));
        assert_eq!(peers.role_of(&key(2)), None);
    }
}
