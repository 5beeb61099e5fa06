//! `itb-link`: the secure channel between a pump and its clinician programmer or patient
//! therapy manager (PTM).
//!
//! The channel carries opaque payloads (the pump's messages are specified above it) between two
//! devices that know each other's static keys:
//!
//! - [`frame`]: length-prefixed frames, decoded incrementally within a fixed bound;
//! - [`hello`]: the cleartext version hello, bound into the handshake against downgrade;
//! - [`channel`]: the [`Session`] state machine (sans-IO): hello, `Noise_IK_25519_ChaChaPoly_BLAKE2s`
//!   handshake, then encrypted payloads in order and exactly once;
//! - [`keys`] and [`trust`]: static keys, their hex files, and the pump's short list of paired
//!   devices with their [`Role`];
//! - [`transport`]: an in-memory pipe for tests and simulation, and TCP with tokio;
//! - [`message`]: the message catalogue (CBOR) carried in the payloads;
//! - [`device`]: the pump's side: roles as types, staged changes committed by hash, idempotent
//!   answers; sans-IO over an [`itb_pump::Pump`].
//!
//! # Architecture invariants
//! - The state machine reads no clock and does no I/O: time is an argument ([`Instant`]), bytes go
//!   in and out through the caller. Only [`transport::tcp`] touches a socket or a timer.
//! - Nothing from the peer is delivered before both sides are authenticated, and nothing is
//!   delivered twice, out of order, or altered: any such frame closes the session.
//! - Everything is bounded: frame sizes, buffered input, queued events and transmits, trusted
//!   devices, concurrent server sessions, and the time a session may idle.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
pub mod device;
pub mod frame;
pub mod hello;
pub mod keys;
pub mod message;
pub mod time;
pub mod transport;
pub mod trust;

pub use channel::{
    ChannelError, CloseReason, Event, InitiatorConfig, MAX_PAYLOAD_LEN, Phase, ResponderConfig, Session, Side, Timeouts,
};
pub use frame::{FrameDecoder, FrameError, MAX_FRAME_LEN, encode_frame};
pub use hello::{PROTOCOL_VERSION, VersionSet};
pub use keys::{KeyError, KeyPair, PublicKey};
pub use time::Instant;
pub use trust::{Role, TrustError, TrustedPeers};
