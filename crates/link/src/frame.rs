//! Length-prefixed frames: how a byte stream (TCP, a serial line, a test buffer) is cut into the
//! messages of the channel.
//!
//! A frame is a 2-byte big-endian body length followed by the body. The body is never empty and
//! never longer than [`MAX_FRAME_LEN`] (65535, the largest Noise message). A stream carries
//! frames back to back with nothing between them.
//!
//! # Invariants
//! - The decoder never holds more than [`FRAME_BUFFER_CAPACITY`] bytes, whatever it is fed: a
//!   peer cannot make it allocate without bound.
//! - A declared length of zero or over the decoder's current bound is an error, found as soon as
//!   the two length bytes have arrived (before the body is waited for), and the decoder stays
//!   failed: a stream that has lost its framing cannot be trusted to find it again.
//! - Decoding never panics on any input (property-tested).

use std::fmt;

/// The largest frame body: 65535 bytes, the largest Noise message.
pub const MAX_FRAME_LEN: usize = 65_535;

/// The bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 2;

/// The most bytes a [`FrameDecoder`] ever buffers: one whole frame of the largest size.
pub const FRAME_BUFFER_CAPACITY: usize = LENGTH_PREFIX_LEN + MAX_FRAME_LEN;

/// Why bytes could not be framed or unframed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame declared (or a caller asked for) a body of zero bytes.
    #[error("a frame body must not be empty")]
    Empty,
    /// A frame declared (or a caller asked for) a body over the bound in force.
    #[error("a frame of {len} bytes is over the limit of {max_len} bytes")]
    TooLong {
        /// The declared or requested body length.
        len: usize,
        /// The bound in force when it was seen.
        max_len: usize,
    },
    /// The decoder failed earlier and refuses further input.
    #[error("the frame stream failed earlier and is no longer read")]
    Failed,
}

/// Frame `body`: its 2-byte big-endian length, then the body.
///
/// # Errors
/// [`FrameError::Empty`] for an empty body, [`FrameError::TooLong`] for one over [`MAX_FRAME_LEN`].
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    let len = u16::try_from(body.len()).map_err(|_| FrameError::TooLong { len: body.len(), max_len: MAX_FRAME_LEN })?;
    let mut frame = Vec::with_capacity(LENGTH_PREFIX_LEN + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Cuts a byte stream into frame bodies, incrementally and within a fixed bound.
///
/// Feed bytes with [`push`](Self::push) (which takes only as many as fit) and take complete
/// bodies with [`pop`](Self::pop) until it returns `Ok(None)`; then push the rest.
///
/// The bound on a body can be lowered while reading ([`set_max_len`](Self::set_max_len)): the
/// channel expects only small frames before its handshake is done, and refuses large ones there.
#[derive(Clone)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    max_len: usize,
    failed: bool,
}

impl fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("buffered_len", &self.buffer.len())
            .field("max_len", &self.max_len)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder for bodies up to [`MAX_FRAME_LEN`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_len(MAX_FRAME_LEN)
    }

    /// A decoder for bodies up to `max_len` (clamped to 1..=[`MAX_FRAME_LEN`]).
    #[must_use]
    pub fn with_max_len(max_len: usize) -> Self {
        Self { buffer: Vec::new(), max_len: max_len.clamp(1, MAX_FRAME_LEN), failed: false }
    }

    /// The largest body accepted now.
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Change the largest body accepted from the next frame on (clamped to 1..=[`MAX_FRAME_LEN`]).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.clamp(1, MAX_FRAME_LEN);
    }

    /// Bytes held and not yet returned as a frame.
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether the decoder has failed and refuses input.
    #[must_use]
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Take as many of `bytes` as fit in the buffer and return how many were taken.
    ///
    /// Fewer than `bytes.len()` are taken only when a whole frame is waiting: [`pop`](Self::pop)
    /// it, then push the rest.
    ///
    /// # Errors
    /// [`FrameError::Failed`] if an earlier frame was refused.
    pub fn push(&mut self, bytes: &[u8]) -> Result<usize, FrameError> {
        if self.failed {
            return Err(FrameError::Failed);
        }
        let room = FRAME_BUFFER_CAPACITY.saturating_sub(self.buffer.len());
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        debug_assert!(self.buffer.len() <= FRAME_BUFFER_CAPACITY);
        Ok(taken)
    }

    /// The next complete frame body, or `None` if more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError::Empty`] or [`FrameError::TooLong`] when the next frame declares a length of
    /// zero or over [`max_len`](Self::max_len); the decoder then stays failed
    /// ([`FrameError::Failed`]).
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.failed {
            return Err(FrameError::Failed);
        }
        let Some(prefix) = self.buffer.first_chunk::<LENGTH_PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes(*prefix));
        if len == 0 {
            self.failed = true;
            return Err(FrameError::Empty);
        }
        if len > self.max_len {
            self.failed = true;
            return Err(FrameError::TooLong { len, max_len: self.max_len });
        }
        if self.buffer.len() < LENGTH_PREFIX_LEN + len {
            return Ok(None);
        }
        let body = self.buffer[LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + len].to_vec();
        self.buffer.drain(..LENGTH_PREFIX_LEN + len);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_in_one_byte_pieces() {
        let frames = [encode_frame(b"a").expect("small"), encode_frame(&[7; 300]).expect("small")];
        let stream: Vec<u8> = frames.concat();
        let mut decoder = FrameDecoder::new();
        let mut bodies = Vec::new();
        for byte in &stream {
            assert_eq!(decoder.push(std::slice::from_ref(byte)), Ok(1));
            while let Some(body) = decoder.pop().expect("valid stream") {
                bodies.push(body);
            }
        }
        assert_eq!(bodies, vec![b"a".to_vec(), vec![7; 300]]);
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn encode_refuses_empty_and_oversize_bodies() {
        assert_eq!(encode_frame(b""), Err(FrameError::Empty));
        assert_eq!(
            encode_frame(&vec![0; MAX_FRAME_LEN + 1]),
            Err(FrameError::TooLong { len: MAX_FRAME_LEN + 1, max_len: MAX_FRAME_LEN })
        );
        let largest = encode_frame(&vec![1; MAX_FRAME_LEN]).expect("largest fits");
        assert_eq!(&largest[..2], &[0xff, 0xff]);
    }

    #[test]
    fn declared_length_over_the_bound_is_refused_before_the_body_arrives() {
        let mut decoder = FrameDecoder::with_max_len(64);
        assert_eq!(decoder.push(&[0x00, 0x41]), Ok(2));
        assert_eq!(decoder.pop(), Err(FrameError::TooLong { len: 65, max_len: 64 }));
        assert!(decoder.is_failed());
        assert_eq!(decoder.push(b"more"), Err(FrameError::Failed));
        assert_eq!(decoder.pop(), Err(FrameError::Failed));
    }

    #[test]
    fn zero_length_is_refused() {
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.push(&[0, 0, 1]), Ok(3));
        assert_eq!(decoder.pop(), Err(FrameError::Empty));
    }

    #[test]
    fn buffer_never_exceeds_one_largest_frame() {
        let mut decoder = FrameDecoder::new();
        let flood = vec![0xff; 3 * FRAME_BUFFER_CAPACITY];
        let taken = decoder.push(&flood).expect("not failed");
        assert_eq!(taken, FRAME_BUFFER_CAPACITY);
        assert_eq!(decoder.buffered_len(), FRAME_BUFFER_CAPACITY);
        let body = decoder.pop().expect("one full frame").expect("complete");
        assert_eq!(body.len(), MAX_FRAME_LEN);
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn max_len_is_clamped() {
        assert_eq!(FrameDecoder::with_max_len(0).max_len(), 1);
        assert_eq!(FrameDecoder::with_max_len(1 << 20).max_len(), MAX_FRAME_LEN);
    }
}
