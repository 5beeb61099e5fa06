//! Two sessions joined by in-memory buffers, for tests and simulation.
//!
//! Deterministic: frames move in a fixed order (initiator's first, then responder's), and time
//! moves only when the caller passes a new instant. The only randomness in a run is the Noise
//! ephemeral keys, which change bytes on the wire but never the sequence of events.

use crate::channel::{Event, InitiatorConfig, ResponderConfig, Session};
use crate::time::Instant;

/// The most rounds [`MemoryPair::run_with`] runs before it stops: a conversation that is still
/// producing frames after this many rounds is a bug (or a tap that keeps repeating frames).
pub const MAX_ROUNDS: usize = 1_000;

/// Which way a frame is travelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the initiator (programmer, PTM) to the responder (pump).
    ToResponder,
    /// From the responder (pump) to the initiator.
    ToInitiator,
}

/// An initiator and a responder joined back to back.
#[derive(Debug)]
pub struct MemoryPair {
    /// The programmer or PTM end.
    pub initiator: Session,
    /// The pump end.
    pub responder: Session,
}

impl MemoryPair {
    /// Both sessions started at `now`; nothing has moved yet.
    #[must_use]
    pub fn new(initiator: InitiatorConfig, responder: ResponderConfig, now: Instant) -> Self {
        Self { initiator: Session::initiator(initiator, now), responder: Session::responder(responder, now) }
    }

    /// Move frames both ways until neither side has anything to send; returns the frames moved.
    pub fn run(&mut self, now: Instant) -> usize {
        self.run_with(now, |_, frame| vec![frame])
    }

    /// As [`run`](Self::run), but every frame passes through `tap`, which returns the chunks to
    /// deliver in its place: none to drop it, two to repeat it, altered bytes to tamper with it.
    /// Errors from the receiving session are not returned: they close it, and its events say why.
    pub fn run_with(&mut self, now: Instant, mut tap: impl FnMut(Direction, Vec<u8>) -> Vec<Vec<u8>>) -> usize {
        let mut moved = 0;
        for _ in 0..MAX_ROUNDS {
            let before = moved;
            while let Some(frame) = self.initiator.poll_transmit() {
                moved += 1;
                for chunk in tap(Direction::ToResponder, frame) {
                    let _closed = self.responder.receive(&chunk, now);
                }
            }
            while let Some(frame) = self.responder.poll_transmit() {
                moved += 1;
                for chunk in tap(Direction::ToInitiator, frame) {
                    let _closed = self.initiator.receive(&chunk, now);
                }
            }
            if moved == before {
                break;
            }
        }
        moved
    }

    /// Tell both sessions the time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.initiator.handle_timeout(now);
        self.responder.handle_timeout(now);
    }
}

/// Every pending event of `session`, oldest first.
pub fn drain_events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}
