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
//! - The server's connections are bounded by [`ServerLimits`]: unauthenticated ones in a pool of
//!   their own (a new connection takes the place of the oldest there), authenticated sessions in
//!   slots by role (a new session takes the slot of the one of its role idle the longest). The
//!   places are kept in a clock-free table (`admission`) shared by the accept loop and the
//!   connections' tasks.
//! - A session is closed to make room only while it waits for input: never between the handler
//!   being given a payload and its answer being written to the socket.
//! - A connection that ends leaves its place at once, before its socket is shut down.

mod admission;

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use self::admission::{Admit, ConnectionId, Table};
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

/// How many connections a server holds at once, by phase and role, and how long a connection may
/// take to authenticate (`docs/PROTOCOL.md`, "Admission and slots").
///
/// A count below 1 counts as 1. The server holds at most `handshaking_max` unauthenticated
/// connections, `clinician_max` clinician and `patient_max` patient sessions, and as many again
/// of each role waiting for a slot of theirs to stop being busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections not yet authenticated held at once (hello, handshake, key confirmation, or
    /// the last frames of a refusal). A new connection that finds them all taken takes the
    /// place of the oldest, which is closed; they never take a session's slot.
    pub handshaking_max: usize,
    /// The server's deadline from accepting a connection to the end of its handshake (the
    /// session's own handshake timeout applies if it is shorter), and the longest an
    /// authenticated connection waits for a slot.
    pub handshake_timeout: Duration,
    /// Clinician sessions at once. No patient session and no unauthenticated connection ever
    /// takes one of these slots.
    pub clinician_max: usize,
    /// Patient (PTM) sessions at once.
    pub patient_max: usize,
}

impl ServerLimits {
    /// 32 unauthenticated connections, 5 s to authenticate, 2 clinician sessions and 1 patient
    /// session.
    pub const DEFAULT: ServerLimits = ServerLimits {
        handshaking_max: 32,
        handshake_timeout: Duration::from_secs(5),
        clinician_max: 2,
        patient_max: 1,
    };
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Accept sessions on `listener` within `limits` and answer each payload with
/// `handler(role, payload)`, run inline on the session's task (keep it quick).
///
/// Runs until accepting fails; dropping the future (or aborting its task) ends every session.
/// Admission is as [`ServerLimits`] says: unauthenticated connections in a pool of their own
/// (the oldest closed to admit the newest), authenticated sessions in slots by role (the one of
/// that role idle the longest closed to admit the newest). A session is closed to make room only
/// while it waits for input, never between the handler being given a payload and its answer
/// being written to the socket. A session that ends frees its slot at once. A handler answer
/// over the payload limit closes that session.
///
/// # Errors
/// The listener's error when accepting fails for a reason other than one connection's.
pub async fn serve<H>(
    listener: TcpListener,
    config: ResponderConfig,
    limits: ServerLimits,
    handler: H,
) -> io::Result<()>
where
    H: Fn(Role, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
{
    serve_async(listener, config, limits, move |role, payload| std::future::ready(handler(role, payload))).await
}

/// As [`serve`], with a handler that returns a future (for answers that wait on something).
///
/// # Errors
/// As [`serve`].
pub async fn serve_async<H, F>(
    listener: TcpListener,
    mut config: ResponderConfig,
    limits: ServerLimits,
    handler: H,
) -> io::Result<()>
where
    H: Fn(Role, Vec<u8>) -> F + Send + Sync + 'static,
    F: Future<Output = Vec<u8>> + Send + 'static,
{
    config.timeouts.handshake = config.timeouts.handshake.min(limits.handshake_timeout);
    let admission = Arc::new(Admission {
        table: Mutex::new(Table::new(limits.handshaking_max, limits.clinician_max, limits.patient_max)),
        changed: watch::Sender::new(()),
    });
    let handler = Arc::new(handler);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _address)) => stream,
                    Err(error) if is_per_connection(&error) => continue,
                    Err(error) => return Err(error),
                };
                let ticket = Ticket::arrive(&admission);
                let connection = serve_connection(stream, config.clone(), limits.handshake_timeout, ticket, Arc::clone(&handler));
                connections.spawn(connection);
            }
            // Reap finished connections as they finish, so that the set stays as small as the table.
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Accept errors that concern one connection only: the listener itself is fine.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// The admission table shared by the accept loop and the connections' tasks.
struct Admission {
    /// Each entry's token wakes its connection when it is evicted.
    table: Mutex<Table<Arc<Notify>>>,
    /// Marked whenever a slot may have become free (a session went idle or left).
    changed: watch::Sender<()>,
}

impl Admission {
    fn table(&self) -> MutexGuard<'_, Table<Arc<Notify>>> {
        // Every table operation leaves it consistent, so a poisoned lock holds a usable table.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mark_changed(&self) {
        self.changed.send_modify(|()| {});
    }
}

/// One connection's place in the admission table; dropping it frees the place at once.
struct Ticket {
    admission: Arc<Admission>,
    id: ConnectionId,
    evicted: Arc<Notify>,
}

impl Ticket {
    /// A new connection: a place in the handshaking pool, evicting the oldest if it was full.
    fn arrive(admission: &Arc<Admission>) -> Self {
        let evicted = Arc::new(Notify::new());
        let (id, victim) = admission.table().arrive(Arc::clone(&evicted));
        if let Some(victim) = victim {
            victim.notify_one();
        }
        Self { admission: Arc::clone(admission), id, evicted }
    }

    /// Resolves once this connection has been evicted (at once if it already was).
    async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Move from the handshaking pool to a slot of `role`, waiting (until `deadline`) while every
    /// slot is busy. `false`: refused.
    async fn admit(&self, role: Role, deadline: tokio::time::Instant) -> bool {
        let mut changes = self.admission.changed.subscribe();
        loop {
            changes.mark_unchanged();
            let answer = self.admission.table().admit(self.id, role);
            match answer {
                Admit::Admitted { evicted } => {
                    if let Some(victim) = evicted {
                        victim.notify_one();
                    }
                    return true;
                }
                Admit::Refused => return false,
                Admit::Wait => {}
            }
            if !matches!(tokio::time::timeout_at(deadline, changes.changed()).await, Ok(Ok(()))) {
                return false;
            }
        }
    }

    /// About to act on a payload: `false` if the session was evicted (it must not act).
    fn begin_work(&self) -> bool {
        self.admission.table().begin_work(self.id)
    }

    /// The answer is written: idle again (and evictable).
    fn end_work(&self) {
        self.admission.table().end_work(self.id);
        self.admission.mark_changed();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let left = self.admission.table().leave(self.id);
        if left.is_some() {
            self.admission.mark_changed();
        }
    }
}

async fn serve_connection<H, F>(
    stream: TcpStream,
    config: ResponderConfig,
    admission_wait: Duration,
    ticket: Ticket,
    handler: Arc<H>,
) where
    H: Fn(Role, Vec<u8>) -> F + Send + Sync + 'static,
    F: Future<Output = Vec<u8>> + Send + 'static,
{
    let epoch = tokio::time::Instant::now();
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let session = Session::responder(config, Instant::from_millis(0));
    let mut driver = Driver::new(stream, session, epoch);

    // Unauthenticated: in the handshaking pool, evictable at any point. The session's first
    // event ends its handshake one way or the other.
    let event = tokio::select! {
        biased;
        () = ticket.evicted() => return,
        event = driver.next_event() => event,
    };
    let role = match event {
        Ok(Event::Established { peer_role: Some(role), .. }) => role,
        // Unreachable: a responder reports the role, and no payload comes before `Established`.
        Ok(Event::Established { peer_role: None, .. } | Event::Payload(_)) => return,
        Ok(Event::Closed(_)) | Err(_) => {
            // The last frames (a version refusal) go out while the connection keeps its
            // handshaking place, and can still be evicted.
            tokio::select! {
                biased;
                () = ticket.evicted() => {}
                () = driver.shutdown() => {}
            }
            return;
        }
    };

    if !ticket.admit(role, tokio::time::Instant::now() + admission_wait).await {
        return;
    }

    loop {
        // Idle, waiting for input: the only time a session may be evicted.
        let event = tokio::select! {
            biased;
            () = ticket.evicted() => break,
            event = driver.next_event() => event,
        };
        let Ok(Event::Payload(payload)) = event else { break };
        if !ticket.begin_work() {
            // Evicted as the payload arrived: it is not acted on.
            break;
        }
        // Busy: nothing closes the session to make room until the answer is in the socket.
        let answer = handler(role, payload).await;
        let now = driver.now();
        let written = match driver.session.send(&answer, now) {
            Ok(()) => driver.flush().await.is_ok(),
            Err(_) => {
                driver.session.close();
                false
            }
        };
        ticket.end_work();
        if !written {
            break;
        }
    }
    // The slot is free at once. Closing the session first bounds what is left (writing any last
    // frame, shutting the socket down) by CLOSING_WRITE_TIMEOUT rather than the idle deadline.
    drop(ticket);
    driver.session.close();
    driver.shutdown().await;
}
