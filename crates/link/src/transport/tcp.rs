//! The channel over TCP, with tokio.
//!
//! The one place in the crate with a socket and a clock. Each connection keeps its own epoch
//! (the moment it started) and gives its session the milliseconds since then as
//! [`Instant`]s; the session's deadline becomes a tokio timer, so a paused tokio clock in tests
//! drives it as well as a real one.
//!
//! # Invariants
//! - Reads are at most [`READ_CHUNK_LEN`] bytes at a time into the session's bounded decoder.
//! - Every wait (connect, read, write) ends at the session's deadline: a peer that stops reading
//!   or writing cannot hold a connection open past the handshake or idle timeout.
//! - The server runs at most `max_sessions` sessions at once; a connection over that is closed as
//!   soon as it is accepted, before any byte is read.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinSet;

use crate::channel::{CloseReason, Event, InitiatorConfig, ResponderConfig, Session};
use crate::keys::PublicKey;
use crate::time::Instant;
use crate::trust::Role;

/// The most bytes read from the socket at once.
pub const READ_CHUNK_LEN: usize = 4096;

/// How long the last frames (such as a version refusal) may take to write after a session closed.
pub const CLOSING_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a TCP conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The network failed, or a wait passed the session's deadline before the session saw it.
    #[error("network error: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    PeerHungUp,
    /// The session closed.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The request could not be sent (before the handshake, or over the payload limit).
    #[error(transparent)]
    Channel(crate::channel::ChannelError),
}

/// A socket, its session and the session's epoch.
struct Driver {
    stream: TcpStream,
    session: Session,
    epoch: tokio::time::Instant,
    buffer: Vec<u8>,
}

impl Driver {
    fn new(stream: TcpStream, session: Session, epoch: tokio::time::Instant) -> Self {
        Self { stream, session, epoch, buffer: vec![0; READ_CHUNK_LEN] }
    }

    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn to_tokio(&self, instant: Instant) -> tokio::time::Instant {
        let far = self.epoch + Duration::from_secs(86_400);
        self.epoch.checked_add(Duration::from_millis(instant.as_millis())).unwrap_or(far)
    }

    /// The session's deadline, or a short grace once it has closed.
    fn write_deadline(&self) -> tokio::time::Instant {
        match self.session.poll_timeout() {
            Some(deadline) => self.to_tokio(deadline),
            None => tokio::time::Instant::now() + CLOSING_WRITE_TIMEOUT,
        }
    }

    /// Write every pending transmit.
    async fn flush(&mut self) -> Result<(), TransportError> {
        while let Some(frame) = self.session.poll_transmit() {
            let deadline = self.write_deadline();
            match tokio::time::timeout_at(deadline, self.stream.write_all(&frame)).await {
                Ok(written) => written?,
                Err(_elapsed) => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading").into());
                }
            }
        }
        Ok(())
    }

    /// Write what is pending, then wait for the session's next event, reading as needed.
    async fn next_event(&mut self) -> Result<Event, TransportError> {
        loop {
            self.flush().await?;
            if let Some(event) = self.session.poll_event() {
                return Ok(event);
            }
            let Some(deadline) = self.session.poll_timeout() else {
                let reason = self.session.close_reason().cloned().unwrap_or(CloseReason::Local);
                return Err(TransportError::Closed(reason));
            };
            let deadline = self.to_tokio(deadline);
            tokio::select! {
                read = self.stream.read(&mut self.buffer) => {
                    let len = read?;
                    if len == 0 {
                        self.session.close();
                        return Err(TransportError::PeerHungUp);
                    }
                    let now = self.now();
                    // An error closes the session; the loop then returns its Closed event.
                    let _closed = self.session.receive(&self.buffer[..len], now);
                }
                () = tokio::time::sleep_until(deadline) => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                }
            }
        }
    }

    async fn shutdown(&mut self) {
        // Best effort: the peer may already be gone.
        let _ignored = self.flush().await;
        let _ignored = tokio::time::timeout(CLOSING_WRITE_TIMEOUT, self.stream.shutdown()).await;
    }
}

/// An established client session with a pump over TCP.
pub struct Connection {
    driver: Driver,
    peer_key: PublicKey,
    version: u8,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer_key", &self.peer_key)
            .field("version", &self.version)
            .field("session", &self.driver.session)
            .finish()
    }
}

/// Connect to the pump at `addr` and complete the hello and handshake, all within the
/// handshake timeout.
///
/// # Errors
/// [`TransportError::Closed`] with the session's reason (version refused, handshake failed,
/// timeout), [`TransportError::PeerHungUp`] if the pump closed the connection (an unknown key, or
/// no room for another session), or [`TransportError::Io`].
pub async fn connect(addr: impl ToSocketAddrs, config: InitiatorConfig) -> Result<Connection, TransportError> {
    let epoch = tokio::time::Instant::now();
    let deadline = epoch + config.timeouts.handshake;
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(stream) => stream?,
        Err(_elapsed) => return Err(TransportError::Closed(CloseReason::HandshakeTimeout)),
    };
    stream.set_nodelay(true)?;
    let session = Session::initiator(config, Instant::from_millis(0));
    let mut driver = Driver::new(stream, session, epoch);
    loop {
        match driver.next_event().await? {
            Event::Established { peer_key, version, .. } => return Ok(Connection { driver, peer_key, version }),
            Event::Closed(reason) => {
                driver.shutdown().await;
                return Err(TransportError::Closed(reason));
            }
            // Unreachable: a session delivers no payload before it is established.
            Event::Payload(_) => {}
        }
    }
}

impl Connection {
    /// The pump's key, proven by the handshake.
    #[must_use]
    pub fn peer_key(&self) -> PublicKey {
        self.peer_key
    }

    /// The protocol version agreed.
    #[must_use]
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Send one payload and wait (up to the idle timeout) for one payload back.
    ///
    /// # Errors
    /// [`TransportError::Channel`] for a payload over the limit; otherwise the connection is
    /// unusable after an error: [`TransportError::Closed`], [`TransportError::PeerHungUp`] or
    /// [`TransportError::Io`].
    pub async fn request(&mut self, payload: &[u8]) -> Result<Vec<u8>, TransportError> {
        let now = self.driver.now();
        self.driver.session.send(payload, now).map_err(|error| match error {
            crate::channel::ChannelError::Closed(reason) => TransportError::Closed(reason),
            other => TransportError::Channel(other),
        })?;
        loop {
            match self.driver.next_event().await? {
                Event::Payload(answer) => return Ok(answer),
                Event::Closed(reason) => return Err(TransportError::Closed(reason)),
                Event::Established { .. } => {}
            }
        }
    }

    /// Close the session and the connection.
    pub async fn close(mut self) {
        self.driver.session.close();
        self.driver.shutdown().await;
    }
}

/// Accept sessions on `listener` and answer each payload with `handler(role, payload)`, run
/// inline on the session's task (keep it quick).
///
/// Runs until accepting fails; dropping the future (or aborting its task) ends every session.
/// At most `max_sessions` sessions run at once; a connection over that is closed immediately. A
/// handler answer over the payload limit closes that session.
///
/// # Errors
/// The listener's error when accepting fails for a reason other than one connection's.
pub async fn serve<H>(listener: TcpListener, config: ResponderConfig, max_sessions: usize, handler: H) -> io::Result<()>
where
    H: Fn(Role, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
{
    serve_async(listener, config, max_sessions, move |role, payload| std::future::ready(handler(role, payload))).await
}

/// As [`serve`], with a handler that returns a future (for answers that wait on something).
///
/// # Errors
/// As [`serve`].
pub async fn serve_async<H, F>(
    listener: TcpListener,
    config: ResponderConfig,
    max_sessions: usize,
    handler: H,
) -> io::Result<()>
where
    H: Fn(Role, Vec<u8>) -> F + Send + Sync + 'static,
    F: Future<Output = Vec<u8>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let mut sessions = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _address)) => stream,
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => return Err(error),
        };
        while sessions.try_join_next().is_some() {}
        if sessions.len() >= max_sessions {
            drop(stream);
            continue;
        }
        sessions.spawn(serve_session(stream, config.clone(), Arc::clone(&handler)));
    }
}

/// Accept errors that concern one connection only: the listener itself is fine.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

async fn serve_session<H, F>(stream: TcpStream, config: ResponderConfig, handler: Arc<H>)
where
    H: Fn(Role, Vec<u8>) -> F + Send + Sync + 'static,
    F: Future<Output = Vec<u8>> + Send + 'static,
{
    let epoch = tokio::time::Instant::now();
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let session = Session::responder(config, Instant::from_millis(0));
    let mut driver = Driver::new(stream, session, epoch);
    let mut role = None;
    while let Ok(event) = driver.next_event().await {
        match event {
            Event::Established { peer_role, .. } => role = peer_role,
            Event::Payload(payload) => {
                let Some(role) = role else { break };
                let answer = handler(role, payload).await;
                let now = driver.now();
                if driver.session.send(&answer, now).is_err() {
                    driver.session.close();
                    break;
                }
            }
            Event::Closed(_) => break,
        }
    }
    driver.shutdown().await;
}
