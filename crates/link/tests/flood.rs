//! Admission under pressure, over real loopback TCP: "the clinician can always get in".
//!
//! A flood of unauthenticated connections held and renewed, PTM sessions held open, finished
//! sessions, and evictions while requests are in flight. Real time with short limits; every
//! "gets in" has a generous upper bound, and nothing asserts a speed.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Devices;
use itb_link::hello::encode_offer;
use itb_link::transport::tcp::{self, Connection, ServerLimits};
use itb_link::{InitiatorConfig, ResponderConfig, Role, VersionSet, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// The longest a test waits for something that should happen at once.
const GENEROUS: Duration = Duration::from_secs(20);

/// A pump server that answers each payload with its role and the payload.
async fn start_pump(config: ResponderConfig, limits: ServerLimits) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback listener");
    let address = listener.local_addr().expect("bound address");
    let server = tokio::spawn(tcp::serve(listener, config, limits, |role: Role, payload: Vec<u8>| {
        let mut answer = format!("{role}:").into_bytes();
        answer.extend(payload);
        answer
    }));
    (address, server)
}

/// A client config that gives up on one attempt after a few seconds (the tests retry).
fn client(devices: &Devices, keys: &itb_link::KeyPair) -> InitiatorConfig {
    let mut config = devices.config_for(keys);
    config.timeouts.handshake = Duration::from_secs(5);
    config
}

/// Connect, retrying after a refusal, until `bound` has passed.
async fn get_in(address: SocketAddr, config: &InitiatorConfig, bound: Duration) -> Result<Connection, String> {
    let deadline = Instant::now() + bound;
    let (mut attempts, mut last) = (0, String::new());
    while Instant::now() < deadline {
        attempts += 1;
        match tokio::time::timeout_at(deadline, tcp::connect(address, config.clone())).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(error)) => last = error.to_string(),
            Err(_elapsed) => last = "timed out".to_owned(),
        }
        sleep(Duration::from_millis(50)).await;
    }
    Err(format!("not in after {bound:?} and {attempts} attempts (the last: {last})"))
}

/// Unauthenticated connections, each held until the pump closes it and then opened again.
struct Flood {
    tasks: Vec<JoinHandle<()>>,
    opened: Arc<AtomicUsize>,
    closed_by_pump: Arc<AtomicUsize>,
}

impl Flood {
    /// `connections` flooders; each reconnects `renew_after` after the pump closed its last one.
    /// Half of them send nothing; the other half send a valid hello and then nothing.
    fn start(address: SocketAddr, connections: usize, renew_after: Duration) -> Self {
        let opened = Arc::new(AtomicUsize::new(0));
        let closed_by_pump = Arc::new(AtomicUsize::new(0));
        let hello = encode_frame(&encode_offer(&VersionSet::CURRENT)).expect("a hello frame");
        let tasks = (0..connections)
            .map(|index| {
                let (opened, closed_by_pump, hello) = (Arc::clone(&opened), Arc::clone(&closed_by_pump), hello.clone());
                let spread = renew_after.mul_f64(index as f64 / connections as f64);
                tokio::spawn(async move {
                    sleep(spread).await;
                    loop {
                        if let Ok(mut stream) = TcpStream::connect(address).await {
                            opened.fetch_add(1, Ordering::Relaxed);
                            if index % 2 == 1 {
                                let _ignored = stream.write_all(&hello).await;
                            }
                            let mut buffer = [0_u8; 64];
                            while let Ok(len) = stream.read(&mut buffer).await {
                                if len == 0 {
                                    break;
                                }
                            }
                            closed_by_pump.fetch_add(1, Ordering::Relaxed);
                        }
                        sleep(renew_after).await;
                    }
                })
            })
            .collect();
        Self { tasks, opened, closed_by_pump }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[tokio::test]
async fn a_flood_of_unauthenticated_connections_does_not_lock_the_clinician_out() {
    let devices = Devices::new();
    let limits = ServerLimits {
        handshaking_max: 8,
        handshake_timeout: Duration::from_secs(1),
        clinician_max: 1,
        patient_max: 1,
    };
    // The pump's own session config keeps the default 30 s handshake: the server's limit is shorter.
    let (address, server) = start_pump(devices.pump_config(), limits).await;
    let flood = Flood::start(address, 3 * limits.handshaking_max, Duration::from_millis(500));
    // Let the flood fill every place the pump has before the clinician comes.
    sleep(Duration::from_millis(800)).await;

    let clinician = client(&devices, &devices.clinician);
    for round in 0..3 {
        let mut connection = get_in(address, &clinician, GENEROUS)
            .await
            .unwrap_or_else(|error| panic!("round {round}: the clinician is locked out by the flood: {error}"));
        assert_eq!(
            connection.request(b"interrogate").await.expect("an answer during the flood"),
            b"clinician:interrogate"
        );
        connection.close().await;
    }
    let (opened, closed) = (flood.opened.load(Ordering::Relaxed), flood.closed_by_pump.load(Ordering::Relaxed));
    assert!(opened > limits.handshaking_max && closed > 0, "the flood was real: {opened} opened, {closed} closed");
    drop(flood);
    server.abort();
}

#[tokio::test]
async fn ptm_sessions_held_open_do_not_lock_the_clinician_out() {
    let devices = Devices::new();
    let limits = ServerLimits {
        handshaking_max: 4,
        handshake_timeout: Duration::from_secs(2),
        clinician_max: 1,
        patient_max: 1,
    };
    let (address, server) = start_pump(devices.pump_config(), limits).await;

    // Eight PTM sessions opened one after the other and held open (a refused one is skipped).
    let patient = client(&devices, &devices.patient);
    let mut held = Vec::new();
    for _ in 0..8 {
        if let Ok(mut ptm) = tcp::connect(address, patient.clone()).await
            && ptm.request(b"status").await.is_ok()
        {
            held.push(ptm);
        }
    }
    let mut newest = held.pop().expect("the newest PTM session is in");
    // The newest keeps asking while the clinician comes in.
    let asking = tokio::spawn(async move {
        let mut answers = 0_usize;
        for _ in 0..50 {
            let answer = newest.request(b"status").await.expect("the PTM session keeps its slot");
            assert_eq!(answer, b"patient:status");
            answers += 1;
            sleep(Duration::from_millis(10)).await;
        }
        answers
    });

    let mut clinician = timeout(GENEROUS, tcp::connect(address, client(&devices, &devices.clinician)))
        .await
        .expect("in time")
        .expect("the clinician gets in while PTM sessions are held open");
    assert_eq!(clinician.request(b"interrogate").await.expect("an answer"), b"clinician:interrogate");
    // The clinician took no patient slot: the PTM session that was asking kept working.
    assert_eq!(asking.await.expect("the PTM task"), 50);
    clinician.close().await;
    drop(held);
    server.abort();
}

/// A relay that opens its connection to the pump now and carries one client's bytes over it
/// later: a connection accepted while the pump was busy, authenticated afterwards.
async fn open_relay(pump: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let upstream = TcpStream::connect(pump).await.expect("the relay connects to the pump");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay listener");
    let address = listener.local_addr().expect("relay address");
    let task = tokio::spawn(async move {
        let (mut downstream, _peer) = listener.accept().await.expect("the client reaches the relay");
        let mut upstream = upstream;
        let _ignored = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await;
    });
    (address, task)
}

#[tokio::test]
async fn a_finished_sessions_slot_is_free_at_once() {
    let devices = Devices::new();
    let limits = ServerLimits {
        handshaking_max: 4,
        handshake_timeout: Duration::from_secs(2),
        clinician_max: 1,
        patient_max: 1,
    };
    let (address, server) = start_pump(devices.pump_config(), limits).await;
    let clinician = client(&devices, &devices.clinician);
    // A PTM session holds the patient slot throughout.
    let mut ptm = tcp::connect(address, client(&devices, &devices.patient)).await.expect("the PTM gets in");
    assert_eq!(ptm.request(b"status").await.expect("an answer"), b"patient:status");

    // Close and connect again at once, over and over: no retry, no pause.
    for round in 0..20 {
        let mut connection = timeout(GENEROUS, tcp::connect(address, clinician.clone()))
            .await
            .expect("in time")
            .unwrap_or_else(|error| panic!("round {round}: refused right after the last session closed: {error}"));
        assert_eq!(connection.request(b"x").await.expect("an answer"), b"clinician:x");
        connection.close().await;
    }

    // A connection that the pump accepted while the slot was taken gets the slot once the session
    // holding it has finished: the slot is decided when the newcomer has authenticated.
    let mut holder = tcp::connect(address, clinician.clone()).await.expect("the holder gets in");
    assert_eq!(holder.request(b"h").await.expect("an answer"), b"clinician:h");
    let (relay, relaying) = open_relay(address).await;
    sleep(Duration::from_millis(200)).await;
    holder.close().await;
    let mut late = timeout(GENEROUS, tcp::connect(relay, clinician.clone()))
        .await
        .expect("in time")
        .expect("the connection opened while the slot was taken gets it once the holder has finished");
    assert_eq!(late.request(b"y").await.expect("an answer"), b"clinician:y");
    late.close().await;

    assert_eq!(ptm.request(b"still").await.expect("the PTM session was never disturbed"), b"patient:still");
    relaying.abort();
    server.abort();
}

#[tokio::test]
async fn eviction_never_drops_the_answer_to_a_handled_request() {
    const CLIENTS: usize = 6;
    const ANSWERS_EACH: usize = 10;
    let devices = Devices::new();
    let limits = ServerLimits {
        handshaking_max: 8,
        handshake_timeout: Duration::from_secs(2),
        clinician_max: 1,
        patient_max: 1,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback listener");
    let address = listener.local_addr().expect("bound address");
    // The handler records each request it acts on, then takes a moment before answering, so that
    // an eviction would land between the two if the server allowed it.
    let handled = Arc::new(Mutex::new(HashSet::new()));
    let handler_record = Arc::clone(&handled);
    let server =
        tokio::spawn(tcp::serve_async(listener, devices.pump_config(), limits, move |_role, payload: Vec<u8>| {
            let handled = Arc::clone(&handler_record);
            async move {
                let id = u64::from_be_bytes(payload.as_slice().try_into().expect("an 8-byte id"));
                handled.lock().expect("handled set").insert(id);
                sleep(Duration::from_millis(id % 4)).await;
                payload
            }
        }));

    // Every client is a clinician: with one clinician slot, each newcomer takes it from another.
    let next_id = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(Mutex::new(HashSet::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let (next_id, answered) = (Arc::clone(&next_id), Arc::clone(&answered));
            let config = client(&devices, &devices.clinician);
            tokio::spawn(async move {
                let deadline = Instant::now() + GENEROUS;
                let mut got = 0;
                let mut lost = 0;
                loop {
                    assert!(Instant::now() < deadline, "client {index} got {got} answers in {GENEROUS:?}");
                    let Ok(mut connection) = tcp::connect(address, config.clone()).await else {
                        sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    while got < ANSWERS_EACH {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        match connection.request(&id.to_be_bytes()).await {
                            Ok(answer) => {
                                assert_eq!(answer, id.to_be_bytes(), "the answer to request {id}");
                                answered.lock().expect("answered set").insert(id);
                                got += 1;
                            }
                            // The session was closed under this request.
                            Err(_) => {
                                lost += 1;
                                break;
                            }
                        }
                        sleep(Duration::from_millis(id % 3)).await;
                    }
                    if got == ANSWERS_EACH {
                        // Done, but left connected, as a programmer left on a desk.
                        return (connection, lost);
                    }
                }
            })
        })
        .collect();
    let mut done = Vec::new();
    for task in clients {
        done.push(task.await.expect("a client that got all its answers"));
    }

    let handled = handled.lock().expect("handled set").clone();
    let answered = answered.lock().expect("answered set").clone();
    let mut unanswered: Vec<_> = handled.difference(&answered).copied().collect();
    unanswered.sort_unstable();
    assert!(unanswered.is_empty(), "requests acted on but never answered: {unanswered:?}");
    assert_eq!(answered.len(), CLIENTS * ANSWERS_EACH);
    let lost: usize = done.iter().map(|(_, lost)| lost).sum();
    println!("{} requests handled, {lost} requests lost to evictions (none acted on)", handled.len());
    server.abort();
}
