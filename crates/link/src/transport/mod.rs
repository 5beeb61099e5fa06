//! Ways to carry a [`Session`](crate::Session)'s bytes.
//!
//! The session itself never touches I/O; a transport moves its transmits to the peer, feeds it
//! what arrives, and tells it the time.
//!
//! - [`memory`]: two sessions joined by in-memory buffers, stepped in a loop, with a tap that can
//!   drop, repeat, reorder or alter frames: for tests and the deterministic simulator.
//! - [`tcp`]: tokio TCP, a client [`Connection`](tcp::Connection) that sends one request and awaits
//!   one answer, and a bounded server ([`serve`](tcp::serve)).

pub mod memory;
pub mod tcp;
