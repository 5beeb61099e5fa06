//! How a programmer reaches a pump: one request payload out, one answer payload back.
//!
//! - [`TcpLink`]: a communicator over TCP (`itb pump run`, or a real one), connecting when
//!   needed and again after a failure.
//! - [`MemoryLink`]: a virtual pump in the same process (the clinic's demo, tests, training),
//!   behind the same encrypted, authenticated channel as over TCP, with the caller's clock.

use std::future::Future;
use std::sync::{Arc, Mutex};

use itb_link::device::Device;
use itb_link::transport::memory::{MemoryPair, drain_events};
use itb_link::transport::tcp::{Connection, connect};
use itb_link::{Event, InitiatorConfig, ResponderConfig, Role};

/// The link failed: the pump's answer did not arrive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pump did not answer ({0})")]
pub struct LinkError(pub String);

/// A link to one pump. After an error the next exchange starts a new session.
pub trait PumpLink {
    /// Sends one request payload and waits for the answer payload.
    fn exchange(&mut self, payload: &[u8]) -> impl Future<Output = Result<Vec<u8>, LinkError>> + Send;
    /// Ends the session, if one is open.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// A pump reached over TCP.
#[derive(Debug)]
pub struct TcpLink {
    address: String,
    config: InitiatorConfig,
    connection: Option<Connection>,
    last_used: Option<std::time::Instant>,
}

/// A session idle for its idle timeout less this is replaced before the next request, so that
/// a person reading a review for minutes does not meet a session the pump has closed.
const IDLE_MARGIN: std::time::Duration = std::time::Duration::from_secs(15);

impl TcpLink {
    /// A link to the pump at `address` (`host:port`) with this programmer's or PTM's keys; it
    /// connects on the first exchange.
    pub fn new(address: impl Into<String>, config: InitiatorConfig) -> Self {
        Self { address: address.into(), config, connection: None, last_used: None }
    }

    /// Connects now, so that an unreachable pump or an unknown key is reported before any work.
    ///
    /// # Errors
    /// The transport's error, in a sentence.
    pub async fn connect(&mut self) -> Result<(), LinkError> {
        if self.connection.is_none() {
            let connection = connect(self.address.as_str(), self.config.clone()).await.map_err(|e| {
                LinkError(match &e {
                    itb_link::transport::tcp::TransportError::Io(io) => match io.kind() {
                        std::io::ErrorKind::ConnectionRefused => {
                            format!("nothing answers at {}: is the pump's communicator on and in range?", self.address)
                        }
                        std::io::ErrorKind::TimedOut => format!("{} did not answer in time", self.address),
                        _ => format!("cannot reach {}: {}", self.address, plain(&io.to_string())),
                    },
                    itb_link::transport::tcp::TransportError::PeerHungUp => format!(
                        "{} closed the connection: this key may not be paired with the pump, or the pump is busy",
                        self.address
                    ),
                    other => other.to_string(),
                })
            })?;
            self.connection = Some(connection);
        }
        Ok(())
    }
}

impl PumpLink for TcpLink {
    async fn exchange(&mut self, payload: &[u8]) -> Result<Vec<u8>, LinkError> {
        let stale_after = self.config.timeouts.idle.saturating_sub(IDLE_MARGIN);
        if self.last_used.is_some_and(|at| at.elapsed() >= stale_after)
            && let Some(old) = self.connection.take()
        {
            old.close().await;
        }
        self.connect().await?;
        self.last_used = Some(std::time::Instant::now());
        let Some(connection) = self.connection.as_mut() else {
            return Err(LinkError("no connection".to_owned()));
        };
        match connection.request(payload).await {
            Ok(answer) => Ok(answer),
            Err(error) => {
                // The session is unusable after an error: the next exchange reconnects.
                self.connection = None;
                Err(LinkError(error.to_string()))
            }
        }
    }

    async fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.close().await;
        }
    }
}

/// An operating system's message without its error number ("... (os error 111)").
fn plain(message: &str) -> String {
    message.split(" (os error").next().unwrap_or(message).to_owned()
}

/// The clock a [`MemoryLink`] reads: the pump's true time now.
pub type Clock = Arc<dyn Fn() -> itb_pump::Instant + Send + Sync>;

/// A virtual pump in this process, behind the real channel (Noise IK, key confirmation,
/// encrypted payloads) joined in memory. Time is the caller's clock, so a demo or a test can run
/// a pump days ahead.
pub struct MemoryLink {
    device: Arc<Mutex<Device>>,
    clock: Clock,
    initiator: InitiatorConfig,
    responder: ResponderConfig,
    pair: Option<MemoryPair>,
    role: Option<Role>,
    epoch_ms: i64,
}

impl std::fmt::Debug for MemoryLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLink").field("role", &self.role).finish_non_exhaustive()
    }
}

impl MemoryLink {
    /// A link from the initiator with `initiator`'s keys to the pump `device`, whose side of the
    /// channel uses `responder` (its keys and trusted list).
    pub fn new(
        device: Arc<Mutex<Device>>,
        clock: Clock,
        initiator: InitiatorConfig,
        responder: ResponderConfig,
    ) -> Self {
        let epoch_ms = clock().as_ms();
        Self { device, clock, initiator, responder, pair: None, role: None, epoch_ms }
    }

    fn link_now(&self) -> itb_link::Instant {
        let elapsed = (self.clock)().as_ms().saturating_sub(self.epoch_ms);
        itb_link::Instant::from_millis(u64::try_from(elapsed).unwrap_or(0))
    }

    fn open(&mut self) -> Result<(), LinkError> {
        let now = self.link_now();
        let mut pair = MemoryPair::new(self.initiator.clone(), self.responder.clone(), now);
        pair.run(now);
        let mut role = None;
        for event in drain_events(&mut pair.responder) {
            match event {
                Event::Established { peer_role, .. } => role = peer_role,
                Event::Closed(reason) => return Err(LinkError(format!("the pump closed the session: {reason}"))),
                Event::Payload(_) => {}
            }
        }
        let established =
            drain_events(&mut pair.initiator).into_iter().any(|event| matches!(event, Event::Established { .. }));
        match (established, role) {
            (true, Some(role)) => {
                self.pair = Some(pair);
                self.role = Some(role);
                Ok(())
            }
            _ => Err(LinkError("the pump did not accept this key".to_owned())),
        }
    }

    fn exchange_now(&mut self, payload: &[u8]) -> Result<Vec<u8>, LinkError> {
        // A session idle past its timeout (the clock may have jumped days) is replaced before
        // anything is sent on it.
        let now = self.link_now();
        if let Some(pair) = self.pair.as_mut() {
            pair.handle_timeout(now);
        }
        if self.pair.as_ref().is_none_or(|pair| pair.initiator.is_closed() || pair.responder.is_closed()) {
            self.open()?;
        }
        let now = self.link_now();
        let (Some(pair), Some(role)) = (self.pair.as_mut(), self.role) else {
            return Err(LinkError("no session".to_owned()));
        };
        let failed = |pair: &mut Option<MemoryPair>, why: String| {
            *pair = None;
            LinkError(why)
        };
        if let Err(error) = pair.initiator.send(payload, now) {
            return Err(failed(&mut self.pair, error.to_string()));
        }
        pair.run(now);
        for event in drain_events(&mut pair.responder) {
            if let Event::Payload(request) = event {
                let answer = {
                    let Ok(mut device) = self.device.lock() else {
                        return Err(failed(&mut self.pair, "the virtual pump is unavailable".to_owned()));
                    };
                    device.handle(role, (self.clock)(), &request).response
                };
                if let Err(error) = pair.responder.send(&answer, now) {
                    return Err(failed(&mut self.pair, error.to_string()));
                }
            }
        }
        pair.run(now);
        for event in drain_events(&mut pair.initiator) {
            match event {
                Event::Payload(answer) => return Ok(answer),
                Event::Closed(reason) => return Err(failed(&mut self.pair, reason.to_string())),
                Event::Established { .. } => {}
            }
        }
        Err(failed(&mut self.pair, "no answer".to_owned()))
    }
}

impl PumpLink for MemoryLink {
    async fn exchange(&mut self, payload: &[u8]) -> Result<Vec<u8>, LinkError> {
        self.exchange_now(payload)
    }

    async fn close(&mut self) {
        self.pair = None;
    }
}
