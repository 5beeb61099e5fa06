//! The secure channel: a sans-IO session state machine over frames.
//!
//! A [`Session`] is one end of one conversation between a pump (the responder) and a programmer
//! or PTM (the initiator). It owns no socket, reads no clock and starts no task: the caller feeds
//! it bytes ([`Session::receive`]) and time ([`Session::handle_timeout`]), and takes from it bytes
//! to write ([`Session::poll_transmit`]) and events ([`Session::poll_event`]). The same code runs
//! over TCP, over an in-memory pipe in tests, and inside a deterministic simulation.
//!
//! The conversation has three phases:
//!
//! 1. **Hello** ([`crate::hello`]): the initiator offers protocol versions, the responder picks
//!    the highest common one or refuses.
//! 2. **Handshake**: `Noise_IK_25519_ChaChaPoly_BLAKE2s`, with both hellos as prologue. The
//!    initiator proves it holds a static key and knows the pump's; the responder looks the
//!    initiator's static key up in its [`TrustedPeers`] and refuses any key not there. Both
//!    handshake payloads are empty: nothing travels before both sides are authenticated. The
//!    initiator then sends an empty transport frame, the *confirmation*: IK message 1 can be
//!    replayed by an eavesdropper, so the responder reports [`Event::Established`] only once a
//!    frame under the new session keys proves the initiator is live.
//! 3. **Established**: each payload is one Noise transport message in one frame. Noise's
//!    implicit nonce makes every frame usable exactly once and in order: a replayed, reordered,
//!    dropped-then-resent or altered frame fails authentication.
//!
//! # Invariants
//! - A payload is delivered ([`Event::Payload`]) only after [`Event::Established`] and only if it
//!   authenticated; nothing the peer sends before that is delivered.
//! - Any failure caused by input or time closes the session with a typed [`CloseReason`],
//!   reported once as [`Event::Closed`]; a closed session refuses all input. (Misuse by the
//!   caller, such as sending before the handshake or an oversize payload, is refused with an
//!   error and changes nothing.)
//! - Bounded: at most [`MAX_QUEUED`] pending events and [`MAX_QUEUED`] pending transmits (beyond
//!   that, [`CloseReason::Overloaded`]), one frame of buffered input, frames before the
//!   handshake ends at most [`HANDSHAKE_FRAME_MAX_LEN`] bytes.
//! - Time only from arguments; randomness only inside snow, for the ephemeral keys.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use snow::params::NoiseParams;
use snow::{HandshakeState, TransportState};

use crate::frame::{FrameDecoder, FrameError, MAX_FRAME_LEN, encode_frame};
use crate::hello::{self, HELLO_MAX_LEN, HelloAnswer, HelloError, VersionSet};
use crate::keys::{KEY_LEN, KeyPair, PublicKey};
use crate::time::Instant;
use crate::trust::{Role, TrustedPeers};

/// The Noise protocol name of the handshake.
pub const NOISE_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

/// The bytes an authentication tag adds to each encrypted payload.
pub const TAG_LEN: usize = 16;

/// The largest payload [`Session::send`] takes: one frame less the tag.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - TAG_LEN;

/// The most pending events, and the most pending transmits, a session holds.
pub const MAX_QUEUED: usize = 64;

/// The largest frame accepted during the handshake. IK message 1 is 96 bytes and message 2 is
/// 48 bytes with empty payloads; anything larger is not a handshake message.
pub const HANDSHAKE_FRAME_MAX_LEN: usize = 128;

/// How long a session may take from its start to the end of the handshake, by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an established session may go without an authenticated frame, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The session's time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the session's start to the end of the handshake.
    pub handshake: Duration,
    /// After the handshake: the longest time without an authenticated frame received or a
    /// payload sent.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { handshake: DEFAULT_HANDSHAKE_TIMEOUT, idle: DEFAULT_IDLE_TIMEOUT }
    }
}

/// What an initiator (programmer, PTM) needs to open a session with a pump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiatorConfig {
    /// The initiator's own static key pair.
    pub keys: KeyPair,
    /// The pump's public key, known in advance (from pairing).
    pub pump_key: PublicKey,
    /// The protocol versions the initiator speaks.
    pub versions: VersionSet,
    /// Time limits.
    pub timeouts: Timeouts,
}

impl InitiatorConfig {
    /// A config with the current protocol version and default time limits.
    #[must_use]
    pub fn new(keys: KeyPair, pump_key: PublicKey) -> Self {
        Self { keys, pump_key, versions: VersionSet::CURRENT, timeouts: Timeouts::default() }
    }
}

/// What a responder (pump) needs to accept sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderConfig {
    /// The pump's own static key pair.
    pub keys: KeyPair,
    /// The devices it accepts, each with its role.
    pub trusted: TrustedPeers,
    /// The protocol versions the pump speaks.
    pub versions: VersionSet,
    /// Time limits.
    pub timeouts: Timeouts,
}

impl ResponderConfig {
    /// A config with the current protocol version and default time limits.
    #[must_use]
    pub fn new(keys: KeyPair, trusted: TrustedPeers) -> Self {
        Self { keys, trusted, versions: VersionSet::CURRENT, timeouts: Timeouts::default() }
    }
}

/// Which end of the conversation a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The programmer or PTM: speaks first, knows the pump's key.
    Initiator,
    /// The pump: answers, checks the initiator's key against its trusted list.
    Responder,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Exchanging hellos (cleartext).
    Hello,
    /// Running the Noise handshake.
    Handshake,
    /// Authenticated; payloads flow both ways.
    Established,
    /// Finished; see [`Session::close_reason`].
    Closed,
}

/// What a session reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake succeeded.
    Established {
        /// On the responder, the role the trusted list gives the initiator's key. On the
        /// initiator, `None`: the peer is the pump whose key it was configured with.
        peer_role: Option<Role>,
        /// The peer's static public key, proven by the handshake.
        peer_key: PublicKey,
        /// The protocol version agreed in the hellos.
        version: u8,
    },
    /// An authenticated payload from the peer, in order, exactly once.
    Payload(Vec<u8>),
    /// The session closed; no event follows.
    Closed(CloseReason),
}

/// Why a session closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The byte stream broke the framing (zero length, or longer than allowed at that point).
    #[error("bad framing: {0}")]
    Frame(FrameError),
    /// A hello was malformed.
    #[error("bad hello: {0}")]
    BadHello(HelloError),
    /// The two sides have no protocol version in common.
    #[error("no common protocol version: this side speaks {local}, the peer speaks {peer}")]
    UnsupportedVersion {
        /// The versions this side speaks.
        local: VersionSet,
        /// The versions the peer offered or speaks.
        peer: VersionSet,
    },
    /// A handshake message failed authentication: the initiator does not know the pump's real
    /// key, or a hello was altered on the way (downgrade attempt), or the message was corrupted.
    #[error("handshake failed: wrong key, altered hello, or corrupted message")]
    HandshakeFailed,
    /// The responder does not trust the initiator's static key.
    #[error("the initiator's key {0} is not paired with this pump")]
    UnknownPeer(PublicKey),
    /// The peer sent something the protocol does not allow at that point.
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// An established-phase frame failed authentication: replayed, reordered, dropped and resent,
    /// or altered.
    #[error("a frame failed authentication (replay, reorder or tamper)")]
    Tampered,
    /// The handshake did not finish in time.
    #[error("the handshake did not finish in time")]
    HandshakeTimeout,
    /// No authenticated traffic for the idle time.
    #[error("the session was idle too long")]
    IdleTimeout,
    /// A queue reached [`MAX_QUEUED`]: the owner is not keeping up, or the peer floods.
    #[error("too many pending events or transmits")]
    Overloaded,
    /// The owner closed the session.
    #[error("closed by this side")]
    Local,
    /// The cryptographic library failed in a way input cannot cause.
    #[error("cryptographic failure: {0}")]
    Crypto(String),
}

/// Why a session call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The session is closed (now, or before this call).
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// [`Session::send`] before the handshake finished (the caller's mistake; nothing changes).
    #[error("the session is not established yet")]
    NotEstablished,
    /// [`Session::send`] with a payload over [`MAX_PAYLOAD_LEN`] (the caller's mistake; nothing
    /// changes).
    #[error("a payload of {len} bytes is over the limit of {max_len} bytes")]
    PayloadTooLong {
        /// The payload's length.
        len: usize,
        /// [`MAX_PAYLOAD_LEN`].
        max_len: usize,
    },
}

/// What a session knows about its side beyond its keys.
#[derive(Debug, Clone)]
enum SideConfig {
    Initiator { pump_key: PublicKey },
    Responder { trusted: TrustedPeers },
}

enum State {
    /// Initiator: `offer` is the hello sent. Responder: `offer` is `None`, waiting for one.
    Hello {
        offer: Option<Vec<u8>>,
    },
    Handshake {
        noise: Box<HandshakeState>,
        version: u8,
    },
    /// Responder: the handshake messages are done; waiting for the initiator's first transport
    /// frame, which proves it is live (Noise message 1 alone could be a replay).
    Confirming {
        noise: Box<TransportState>,
        version: u8,
        peer_role: Role,
        peer_key: PublicKey,
    },
    Established {
        noise: Box<TransportState>,
        version: u8,
        peer_role: Option<Role>,
        peer_key: PublicKey,
    },
    Closed(CloseReason),
}

impl State {
    fn phase(&self) -> Phase {
        match self {
            State::Hello { .. } => Phase::Hello,
            State::Handshake { .. } | State::Confirming { .. } => Phase::Handshake,
            State::Established { .. } => Phase::Established,
            State::Closed(_) => Phase::Closed,
        }
    }
}

/// One end of a secure conversation, driven by its owner (sans-IO).
pub struct Session {
    side: SideConfig,
    keys: KeyPair,
    versions: VersionSet,
    timeouts: Timeouts,
    state: State,
    decoder: FrameDecoder,
    events: VecDeque<Event>,
    transmits: VecDeque<Vec<u8>>,
    deadline: Instant,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("side", &self.side())
            .field("phase", &self.phase())
            .field("close_reason", &self.close_reason())
            .field("pending_events", &self.events.len())
            .field("pending_transmits", &self.transmits.len())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Start an initiator session at `now`; its hello is ready in [`poll_transmit`](Self::poll_transmit).
    #[must_use]
    pub fn initiator(config: InitiatorConfig, now: Instant) -> Self {
        let offer = hello::encode_offer(&config.versions);
        let mut session = Self::new(
            SideConfig::Initiator { pump_key: config.pump_key },
            config.keys,
            config.versions,
            config.timeouts,
            State::Hello { offer: Some(offer.clone()) },
            now,
        );
        session.queue_transmit(&offer);
        session
    }

    /// Start a responder session at `now`, waiting for an initiator's hello.
    #[must_use]
    pub fn responder(config: ResponderConfig, now: Instant) -> Self {
        Self::new(
            SideConfig::Responder { trusted: config.trusted },
            config.keys,
            config.versions,
            config.timeouts,
            State::Hello { offer: None },
            now,
        )
    }

    fn new(
        side: SideConfig,
        keys: KeyPair,
        versions: VersionSet,
        timeouts: Timeouts,
        state: State,
        now: Instant,
    ) -> Self {
        Self {
            side,
            keys,
            versions,
            timeouts,
            state,
            decoder: FrameDecoder::with_max_len(HELLO_MAX_LEN),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            deadline: now + timeouts.handshake,
        }
    }

    /// Which end this session is.
    #[must_use]
    pub fn side(&self) -> Side {
        match self.side {
            SideConfig::Initiator { .. } => Side::Initiator,
            SideConfig::Responder { .. } => Side::Responder,
        }
    }

    /// Where the session is in its life.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Whether payloads can be sent.
    #[must_use]
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// Whether the session has closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Why the session closed, once it has.
    #[must_use]
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            State::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// The peer's proven key, the role the responder gave it, and the version, once established.
    #[must_use]
    pub fn peer(&self) -> Option<(PublicKey, Option<Role>, u8)> {
        match &self.state {
            State::Established { peer_key, peer_role, version, .. } => Some((*peer_key, *peer_role, *version)),
            _ => None,
        }
    }

    /// Feed bytes read from the peer at `now`. Any number of bytes, cut anywhere.
    ///
    /// # Errors
    /// [`ChannelError::Closed`] if the session was closed, or these bytes (or the time) closed
    /// it; the reason is also reported as [`Event::Closed`] when the session closes.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) -> Result<(), ChannelError> {
        self.handle_timeout(now);
        self.check_open()?;
        let mut rest = bytes;
        loop {
            self.handle_buffered_frames(now)?;
            if rest.is_empty() {
                return Ok(());
            }
            let taken = match self.decoder.push(rest) {
                Ok(taken) => taken,
                Err(error) => return Err(self.fail(CloseReason::Frame(error))),
            };
            if taken == 0 {
                // Unreachable: the buffer holds one largest frame, which the loop above pops.
                return Err(self.fail(CloseReason::Overloaded));
            }
            rest = &rest[taken..];
        }
    }

    /// Encrypt `payload` into one frame for the peer; `now` counts as activity for the idle
    /// timeout.
    ///
    /// # Errors
    /// [`ChannelError::NotEstablished`] before the handshake ends and
    /// [`ChannelError::PayloadTooLong`] over [`MAX_PAYLOAD_LEN`] (nothing changes);
    /// [`ChannelError::Closed`] if the session is closed or this send closed it (a full
    /// transmit queue closes it as [`CloseReason::Overloaded`]).
    pub fn send(&mut self, payload: &[u8], now: Instant) -> Result<(), ChannelError> {
        self.handle_timeout(now);
        self.check_open()?;
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(ChannelError::PayloadTooLong { len: payload.len(), max_len: MAX_PAYLOAD_LEN });
        }
        let State::Established { noise, .. } = &mut self.state else {
            return Err(ChannelError::NotEstablished);
        };
        let mut message = vec![0_u8; payload.len() + TAG_LEN];
        let written = match noise.write_message(payload, &mut message) {
            Ok(written) => written,
            Err(error) => return Err(self.fail(CloseReason::Crypto(error.to_string()))),
        };
        message.truncate(written);
        self.queue_transmit(&message);
        self.check_open()?;
        self.deadline = now + self.timeouts.idle;
        Ok(())
    }

    /// Close the session from this side ([`CloseReason::Local`]). Nothing is sent: the owner
    /// closes the connection under it.
    pub fn close(&mut self) {
        if !self.is_closed() {
            self.fail(CloseReason::Local);
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next bytes to write to the peer (one whole frame), oldest first. Frames queued before
    /// a close (such as the refusal of a version) are still returned after it.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_closed()).then_some(self.deadline)
    }

    /// Tell the session the time is `now`: past its deadline, it closes with
    /// [`CloseReason::HandshakeTimeout`] or [`CloseReason::IdleTimeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() || now < self.deadline {
            return;
        }
        let reason = if self.is_established() { CloseReason::IdleTimeout } else { CloseReason::HandshakeTimeout };
        self.fail(reason);
    }

    fn check_open(&self) -> Result<(), ChannelError> {
        match &self.state {
            State::Closed(reason) => Err(ChannelError::Closed(reason.clone())),
            _ => Ok(()),
        }
    }

    /// Close with `reason` and return the matching error.
    fn fail(&mut self, reason: CloseReason) -> ChannelError {
        if let State::Closed(first) = &self.state {
            return ChannelError::Closed(first.clone());
        }
        self.state = State::Closed(reason.clone());
        // The one event allowed past the bound: the owner always learns why.
        self.events.push_back(Event::Closed(reason.clone()));
        debug_assert!(self.events.len() <= MAX_QUEUED + 1);
        ChannelError::Closed(reason)
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED {
            self.fail(CloseReason::Overloaded);
        } else {
            self.events.push_back(event);
        }
    }

    fn queue_transmit(&mut self, body: &[u8]) {
        if self.transmits.len() >= MAX_QUEUED {
            self.fail(CloseReason::Overloaded);
            return;
        }
        match encode_frame(body) {
            Ok(frame) => self.transmits.push_back(frame),
            // Unreachable: every body here is a non-empty hello or Noise message within bounds.
            Err(error) => {
                self.fail(CloseReason::Frame(error));
            }
        }
    }

    fn frame_max_len(&self) -> usize {
        match self.state {
            State::Hello { .. } => HELLO_MAX_LEN,
            State::Handshake { .. } | State::Confirming { .. } => HANDSHAKE_FRAME_MAX_LEN,
            State::Established { .. } | State::Closed(_) => MAX_FRAME_LEN,
        }
    }

    fn handle_buffered_frames(&mut self, now: Instant) -> Result<(), ChannelError> {
        loop {
            self.decoder.set_max_len(self.frame_max_len());
            match self.decoder.pop() {
                Ok(Some(body)) => {
                    self.handle_frame(&body, now);
                    self.check_open()?;
                }
                Ok(None) => return Ok(()),
                Err(error) => return Err(self.fail(CloseReason::Frame(error))),
            }
        }
    }

    fn handle_frame(&mut self, body: &[u8], now: Instant) {
        // Take the state out, leaving a placeholder that is not `Closed`, so that a queue overflow
        // inside a handler still closes the session through `fail`.
        let state = std::mem::replace(&mut self.state, State::Hello { offer: None });
        let next = match (state, self.side()) {
            (State::Hello { offer: Some(offer) }, Side::Initiator) => self.on_answer(&offer, body),
            (State::Hello { offer: None }, Side::Responder) => self.on_offer(body),
            (State::Handshake { noise, version }, Side::Initiator) => {
                self.on_handshake_reply(*noise, version, body, now)
            }
            (State::Handshake { noise, version }, Side::Responder) => self.on_handshake_start(*noise, version, body),
            (State::Confirming { noise, version, peer_role, peer_key }, _) => {
                self.on_confirmation(*noise, version, peer_role, peer_key, body, now)
            }
            (State::Established { mut noise, version, peer_role, peer_key }, _) => open_transport(&mut noise, body)
                .map(|payload| {
                    self.deadline = now + self.timeouts.idle;
                    self.push_event(Event::Payload(payload));
                    State::Established { noise, version, peer_role, peer_key }
                }),
            // Unreachable: the constructors pair each side with its own hello state.
            (State::Hello { .. }, _) => Err(CloseReason::ProtocolViolation("hello state does not match the side")),
            (State::Closed(reason), _) => Err(reason),
        };
        if self.is_closed() {
            // A handler's queue overflowed: the session is already closed as Overloaded.
            return;
        }
        match next {
            Ok(state) => self.state = state,
            Err(reason) => {
                self.fail(reason);
            }
        }
    }

    /// Initiator, hello phase: the responder's answer to our offer.
    fn on_answer(&mut self, offer: &[u8], body: &[u8]) -> Result<State, CloseReason> {
        let SideConfig::Initiator { pump_key } = &self.side else {
            return Err(CloseReason::ProtocolViolation("an answer reached a responder"));
        };
        match hello::decode_answer(body).map_err(CloseReason::BadHello)? {
            HelloAnswer::Refuse(peer) => Err(CloseReason::UnsupportedVersion { local: self.versions, peer }),
            HelloAnswer::Accept(version) if !self.versions.contains(version) => {
                Err(CloseReason::ProtocolViolation("the responder chose a version that was not offered"))
            }
            HelloAnswer::Accept(version) => {
                let prologue = hello::prologue(offer, body);
                let mut noise = noise_builder(&self.keys, &prologue)
                    .and_then(|builder| builder.remote_public_key(pump_key.as_bytes()))
                    .and_then(snow::Builder::build_initiator)
                    .map_err(crypto_failure)?;
                let mut message = vec![0_u8; HANDSHAKE_FRAME_MAX_LEN];
                let len = noise.write_message(&[], &mut message).map_err(crypto_failure)?;
                self.queue_transmit(&message[..len]);
                Ok(State::Handshake { noise: Box::new(noise), version })
            }
        }
    }

    /// Responder, hello phase: the initiator's offer.
    fn on_offer(&mut self, body: &[u8]) -> Result<State, CloseReason> {
        let offered = hello::decode_offer(body).map_err(CloseReason::BadHello)?;
        let Some(version) = self.versions.highest_common(&offered) else {
            self.queue_transmit(&hello::encode_answer(&HelloAnswer::Refuse(self.versions)));
            return Err(CloseReason::UnsupportedVersion { local: self.versions, peer: offered });
        };
        let answer = hello::encode_answer(&HelloAnswer::Accept(version));
        let prologue = hello::prologue(body, &answer);
        let noise =
            noise_builder(&self.keys, &prologue).and_then(snow::Builder::build_responder).map_err(crypto_failure)?;
        self.queue_transmit(&answer);
        Ok(State::Handshake { noise: Box::new(noise), version })
    }

    /// Responder, handshake phase: Noise message 1 (`e, es, s, ss`).
    fn on_handshake_start(
        &mut self,
        mut noise: HandshakeState,
        version: u8,
        body: &[u8],
    ) -> Result<State, CloseReason> {
        let SideConfig::Responder { trusted } = &self.side else {
            return Err(CloseReason::ProtocolViolation("handshake message 1 reached an initiator"));
        };
        read_handshake_message(&mut noise, body)?;
        let peer_key = remote_static(&noise)?;
        let Some(role) = trusted.role_of(&peer_key) else {
            // Nothing is sent back: an unknown device learns no more than a silent pump.
            return Err(CloseReason::UnknownPeer(peer_key));
        };
        let mut message = vec![0_u8; HANDSHAKE_FRAME_MAX_LEN];
        let len = noise.write_message(&[], &mut message).map_err(crypto_failure)?;
        let noise = noise.into_transport_mode().map_err(crypto_failure)?;
        self.queue_transmit(&message[..len]);
        Ok(State::Confirming { noise: Box::new(noise), version, peer_role: role, peer_key })
    }

    /// Responder, handshake phase: the initiator's confirmation, an empty transport frame.
    fn on_confirmation(
        &mut self,
        mut noise: TransportState,
        version: u8,
        peer_role: Role,
        peer_key: PublicKey,
        body: &[u8],
        now: Instant,
    ) -> Result<State, CloseReason> {
        match open_transport(&mut noise, body) {
            Ok(payload) if payload.is_empty() => {}
            Ok(_) => return Err(CloseReason::ProtocolViolation("the confirmation frame carries no payload")),
            Err(CloseReason::Tampered) => return Err(CloseReason::HandshakeFailed),
            Err(other) => return Err(other),
        }
        self.establish(now, Some(peer_role), peer_key, version);
        Ok(State::Established { noise: Box::new(noise), version, peer_role: Some(peer_role), peer_key })
    }

    /// Initiator, handshake phase: Noise message 2 (`e, ee, se`).
    fn on_handshake_reply(
        &mut self,
        mut noise: HandshakeState,
        version: u8,
        body: &[u8],
        now: Instant,
    ) -> Result<State, CloseReason> {
        read_handshake_message(&mut noise, body)?;
        let peer_key = remote_static(&noise)?;
        let mut noise = noise.into_transport_mode().map_err(crypto_failure)?;
        let mut confirmation = [0_u8; TAG_LEN];
        let len = noise.write_message(&[], &mut confirmation).map_err(crypto_failure)?;
        self.queue_transmit(&confirmation[..len]);
        self.establish(now, None, peer_key, version);
        Ok(State::Established { noise: Box::new(noise), version, peer_role: None, peer_key })
    }

    fn establish(&mut self, now: Instant, peer_role: Option<Role>, peer_key: PublicKey, version: u8) {
        self.deadline = now + self.timeouts.idle;
        self.push_event(Event::Established { peer_role, peer_key, version });
    }
}

/// A builder for [`NOISE_PATTERN`] with our static key and the prologue.
fn noise_builder<'a>(keys: &'a KeyPair, prologue: &'a [u8]) -> Result<snow::Builder<'a>, snow::Error> {
    let params: NoiseParams = NOISE_PATTERN.parse()?;
    snow::Builder::new(params).local_private_key(keys.private_bytes())?.prologue(prologue)
}

/// Read one handshake message, whose payload must be empty (no data before authentication).
fn read_handshake_message(noise: &mut HandshakeState, body: &[u8]) -> Result<(), CloseReason> {
    let mut payload = vec![0_u8; body.len()];
    match noise.read_message(body, &mut payload) {
        Ok(0) => Ok(()),
        Ok(_) => Err(CloseReason::ProtocolViolation("handshake messages carry no payload")),
        Err(snow::Error::Decrypt | snow::Error::Input | snow::Error::Dh) => Err(CloseReason::HandshakeFailed),
        Err(error) => Err(crypto_failure(error)),
    }
}

/// The peer's static key as the handshake proved it.
fn remote_static(noise: &HandshakeState) -> Result<PublicKey, CloseReason> {
    let bytes: [u8; KEY_LEN] = noise
        .get_remote_static()
        .and_then(|key| key.try_into().ok())
        .ok_or_else(|| CloseReason::Crypto("the handshake gave no remote static key".to_owned()))?;
    Ok(PublicKey::from_bytes(bytes))
}

fn crypto_failure(error: snow::Error) -> CloseReason {
    CloseReason::Crypto(error.to_string())
}

fn open_transport(noise: &mut TransportState, body: &[u8]) -> Result<Vec<u8>, CloseReason> {
    let mut payload = vec![0_u8; body.len()];
    match noise.read_message(body, &mut payload) {
        Ok(len) => {
            payload.truncate(len);
            Ok(payload)
        }
        Err(snow::Error::Decrypt | snow::Error::Input) => Err(CloseReason::Tampered),
        Err(error) => Err(CloseReason::Crypto(error.to_string())),
    }
}
