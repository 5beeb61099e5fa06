//! Static keys: what a pump, a programmer and a PTM are known by.
//!
//! Each device holds one X25519 key pair for years; its public half is what the other side
//! trusts (the pump's list of paired programmers, the programmer's record of the pump). Keys
//! are stored as 64 lowercase hex characters, one key per file, so a person can compare them by
//! eye and a file carries nothing but the key.
//!
//! # Invariants
//! - A [`KeyPair`]'s public key is always the one derived from its private key: a pair is made
//!   only by generation or from the private key alone.
//! - The private key is never printed: `Debug` shows the public key only.

use std::fmt;
use std::str::FromStr;

use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};

use crate::channel::NOISE_PATTERN;

/// The bytes of a key, private or public (X25519).
pub const KEY_LEN: usize = 32;

/// Why a key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key text is not 64 hex characters.
    #[error("a key is {expected} hex characters (0-9, a-f); this text has {found} characters")]
    WrongLength {
        /// Characters expected.
        expected: usize,
        /// Characters found (after trimming white space).
        found: usize,
    },
    /// The key text holds a character that is not a hex digit.
    #[error("a key is written in hex (0-9, a-f); character {position} is '{character}'")]
    NotHex {
        /// 1-based position of the character in the trimmed text.
        position: usize,
        /// The character.
        character: char,
    },
    /// The cryptographic library could not provide randomness or the key agreement function.
    #[error("the cryptographic library failed: {0}")]
    Crypto(String),
}

/// A device's public key: what others trust it by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// The key with these bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as 64 lowercase hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// Read a key from 64 hex characters (white space around them is ignored).
    ///
    /// # Errors
    /// [`KeyError::WrongLength`] or [`KeyError::NotHex`].
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        hex_decode_key(text).map(Self)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::from_hex(text)
    }
}

/// A device's static key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    private: [u8; KEY_LEN],
    public: PublicKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").field("public", &self.public).field("private", &"(hidden)").finish()
    }
}

impl KeyPair {
    /// A new key pair from the operating system's randomness (through snow's key generation).
    ///
    /// # Errors
    /// [`KeyError::Crypto`] if randomness or the key agreement function is unavailable.
    pub fn generate() -> Result<Self, KeyError> {
        let params = NOISE_PATTERN.parse().map_err(|error| KeyError::Crypto(format!("{error}")))?;
        let pair =
            snow::Builder::new(params).generate_keypair().map_err(|error| KeyError::Crypto(format!("{error}")))?;
        let private: [u8; KEY_LEN] = pair
            .private
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Crypto(format!("private key of {} bytes", pair.private.len())))?;
        Self::from_private(private)
    }

    /// The pair whose private key is `private`; the public key is derived from it.
    ///
    /// # Errors
    /// [`KeyError::Crypto`] if the key agreement function is unavailable.
    pub fn from_private(private: [u8; KEY_LEN]) -> Result<Self, KeyError> {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .ok_or_else(|| KeyError::Crypto("X25519 is not available".to_owned()))?;
        dh.set(&private);
        let public: [u8; KEY_LEN] = dh
            .pubkey()
            .try_into()
            .map_err(|_| KeyError::Crypto(format!("public key of {} bytes", dh.pubkey().len())))?;
        Ok(Self { private, public: PublicKey(public) })
    }

    /// Read a pair from its private key written as 64 hex characters (a key file).
    ///
    /// # Errors
    /// [`KeyError::WrongLength`], [`KeyError::NotHex`] or [`KeyError::Crypto`].
    pub fn from_private_hex(text: &str) -> Result<Self, KeyError> {
        Self::from_private(hex_decode_key(text)?)
    }

    /// The private key as 64 lowercase hex characters, for a key file. Keep it secret.
    #[must_use]
    pub fn private_hex(&self) -> String {
        hex_encode(&self.private)
    }

    /// The public key.
    #[must_use]
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The private key's bytes. Keep them secret.
    #[must_use]
    pub fn private_bytes(&self) -> &[u8; KEY_LEN] {
        &self.private
    }
}

/// `bytes` as lowercase hex.
#[must_use]
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// A 32-byte key from 64 hex characters (either case; white space around them is ignored).
///
/// # Errors
/// [`KeyError::WrongLength`] or [`KeyError::NotHex`].
pub fn hex_decode_key(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let text = text.trim();
    if let Some((index, character)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(KeyError::NotHex { position: index + 1, character });
    }
    // Only ASCII remains, so bytes and characters agree.
    let digits = text.as_bytes();
    if digits.len() != 2 * KEY_LEN {
        return Err(KeyError::WrongLength { expected: 2 * KEY_LEN, found: digits.len() });
    }
    let mut key = [0_u8; KEY_LEN];
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    Ok(key)
}

/// The value of one ASCII hex digit (checked by the caller).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_accepts_upper_case_and_surrounding_space() {
        let key = PublicKey::from_bytes([0xab; KEY_LEN]);
        let text = key.to_hex();
        assert_eq!(text.len(), 64);
        assert_eq!(&text[..4], "abab");
        assert_eq!(PublicKey::from_hex(&text), Ok(key));
        assert_eq!(format!(" {}\n", text.to_uppercase()).parse::<PublicKey>(), Ok(key));
    }

    #[test]
    fn hex_refuses_wrong_length_and_non_hex() {
        assert_eq!(PublicKey::from_hex("abcd"), Err(KeyError::WrongLength { expected: 64, found: 4 }));
        let mut text = "0".repeat(64);
        text.replace_range(9..10, "g");
        assert_eq!(PublicKey::from_hex(&text), Err(KeyError::NotHex { position: 10, character: 'g' }));
        assert!(matches!(PublicKey::from_hex("é"), Err(KeyError::NotHex { position: 1, character: 'é' })));
    }

    #[test]
    fn generated_pair_reads_back_from_its_private_key_file() {
        let pair = KeyPair::generate().expect("keys can be generated");
        let again = KeyPair::from_private_hex(&pair.private_hex()).expect("valid key file");
        assert_eq!(again, pair);
        assert_ne!(pair.public().as_bytes(), pair.private_bytes());
        assert!(!format!("{pair:?}").contains(&pair.private_hex()));
    }

    #[test]
    fn public_key_is_derived_as_x25519() {
        // RFC 7748, section 6.1: Alice's private and public keys.
        let private = hex_decode_key("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").expect("hex");
        let pair = KeyPair::from_private(private).expect("x25519");
        assert_eq!(pair.public().to_hex(), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    }
}
